package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
)

var lsCommand = &cli.Command{
	Name:      "ls",
	Usage:     "list the tags of a registry repository, layout or archive",
	ArgsUsage: "REPOSITORY",
	Description: `Lists the tags of a registry repository (host/repo), an OCI layout (oci:DIR)
or a layout archive (oci-archive:FILE), sorted. Tags of the cosign and
referrers schemes (sha256-<hex>, sha256-<hex>.sig/.att/.sbom) are left out
unless --all.`,
	Flags: flags([]cli.Flag{
		&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "also list the tags of signatures and referrers (sha256-<hex>...)"},
		outputFlag,
	}, registryFlags),
	Action: lsAction,
}

// lsOutput is what `ls --output json` writes.
type lsOutput struct {
	Envelope
	Repository string   `json:"repository"`
	Tags       []string `json:"tags"`
}

// tagLister is what registries, layouts and archives list tags with.
type tagLister interface {
	Tags(ctx context.Context, last string, fn func(tags []string) error) error
}

// maxTags bounds what ls reads from a registry.
const maxTags = 100000

func lsAction(c *cli.Context) error {
	args, err := arguments(c, 1, 1, "one repository, layout or archive")
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
	if ref.Tag != "" || ref.Digest != "" {
		return cliutil.Usagef("ls %s: name a repository, layout or archive, without tag or digest", ref)
	}
	target, err := open(c, ref, false)
	if err != nil {
		return err
	}
	defer target.Close()
	lister, ok := target.GraphTarget.(tagLister)
	if !ok {
		return fmt.Errorf("%s: cannot list tags", ref)
	}
	tags := []string{}
	err = lister.Tags(c.Context, "", func(page []string) error {
		for _, t := range page {
			if c.Bool("all") || !isReferrerTag(t) {
				tags = append(tags, t)
			}
		}
		if len(tags) > maxTags {
			return fmt.Errorf("more than %d tags", maxTags)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: list tags: %w", ref, classifyNotFound(err))
	}
	slices.Sort(tags)
	if asJSON {
		return cliutil.WriteJSON(c.App.Writer, lsOutput{Envelope: newEnvelope("Tags"), Repository: ref.String(), Tags: tags})
	}
	for _, t := range tags {
		if _, err := fmt.Fprintln(c.App.Writer, t); err != nil {
			return err
		}
	}
	return nil
}

// isReferrerTag reports whether t is a tag of the cosign or referrers
// schemes: "sha256-<hex>" or "sha256-<hex>.<suffix>".
func isReferrerTag(t string) bool {
	for _, alg := range []string{"sha256-", "sha512-"} {
		if rest, ok := strings.CutPrefix(t, alg); ok {
			hex, _, _ := strings.Cut(rest, ".")
			return len(hex) >= 64 && strings.Trim(hex, "0123456789abcdef") == ""
		}
	}
	return false
}
