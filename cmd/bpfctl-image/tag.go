package main

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
)

var tagCommand = &cli.Command{
	Name:      "tag",
	Usage:     "give an artifact more tags in its repository, layout or archive",
	ArgsUsage: "REF TAG [TAG...]",
	Description: `Resolves REF once to a digest and tags that digest with each TAG, in the same
registry repository, layout or archive (use copy to tag into another). Tags
of the cosign and referrers schemes (sha256-<hex>...) are refused: they belong
to signatures.`,
	Flags:  flags([]cli.Flag{outputFlag}, registryFlags),
	Action: tagAction,
}

// tagOutput is what `tag --output json` writes.
type tagOutput struct {
	Envelope
	// Reference is REF pinned to the digest tagged.
	Reference string   `json:"reference"`
	Digest    string   `json:"digest"`
	Tags      []string `json:"tags"`
}

// tagPattern is the OCI distribution spec's tag grammar.
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

func tagAction(c *cli.Context) error {
	args, err := arguments(c, 2, -1, "REF TAG [TAG...]")
	if err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	ref, err := parseReference(args[0])
	if err != nil {
		return err
	}
	if ref.Transport == artifact.File {
		return cliutil.Usagef("%s: a local file has no tags", ref)
	}
	tags := args[1:]
	for _, t := range tags {
		switch {
		case !tagPattern.MatchString(t):
			return cliutil.Usagef("tag %q: want letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-'", t)
		case strings.HasPrefix(t, "sha256-") || strings.HasPrefix(t, "sha512-"):
			return cliutil.Usagef("tag %q: tags sha256-<hex>... hold signatures and referrers; choose another", t)
		}
	}
	target, err := open(c, ref, false)
	if err != nil {
		return err
	}
	desc, err := resolve(c, target, ref)
	if err != nil {
		target.Close()
		return err
	}
	for _, t := range tags {
		if err = target.Tag(c.Context, desc, t); err != nil {
			err = fmt.Errorf("%s: tag %s: %w", ref, t, err)
			break
		}
	}
	if err != nil {
		target.Discard()
		return err
	}
	if err := target.Close(); err != nil {
		return err
	}
	pinned := ref.WithDigest(desc.Digest).String()
	if asJSON {
		return cliutil.WriteJSON(c.App.Writer, tagOutput{Envelope: newEnvelope("Tag"), Reference: pinned, Digest: desc.Digest.String(), Tags: tags})
	}
	_, err = fmt.Fprintln(c.App.Writer, desc.Digest)
	return err
}
