package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
)

// copyFlags are the flags of copy and push.
var copyFlags = []cli.Flag{
	&cli.BoolFlag{
		Name:    "skip-referrers",
		Usage:   "copy the artifact alone, without its signatures and other referrers",
		EnvVars: []string{"BPFCTL_IMAGE_SKIP_REFERRERS"},
	},
	outputFlag,
}

var copyCommand = &cli.Command{
	Name:      "copy",
	Usage:     "copy an artifact, with its signatures and other referrers, between references",
	ArgsUsage: "SRC DST",
	Description: `Copies the artifact SRC names to DST: any of a registry, an OCI layout
(oci:DIR) or a layout archive (oci-archive:FILE), e.g. into a layout for an
air-gapped audit. Referrers (OCI 1.1 subjects, or the sha256-<hex> tag
schema) and cosign's sha256-<hex>.sig/.att/.sbom tags come along; those
over the limits (docs/artifact-spec.md) or malformed are skipped with a
warning. DST is tagged with its own tag, else SRC's. Blobs stream from SRC
to DST, each verified against its digest on the way, without being held in
memory; the tag is written last, so a missing or tampered blob leaves DST
untagged (a layout or archive as it was).`,
	Flags:  flags(copyFlags, registryFlags),
	Action: func(c *cli.Context) error { return copyArtifact(c, false) },
}

var pushCommand = &cli.Command{
	Name:        "push",
	Usage:       "push an artifact from an OCI layout or archive to a reference",
	ArgsUsage:   "SRC DST",
	Description: "Push is copy from a local layout (oci:DIR) or archive (oci-archive:FILE), with the artifact's signatures and other referrers.",
	Flags:       flags(copyFlags, registryFlags),
	Action:      func(c *cli.Context) error { return copyArtifact(c, true) },
}

func copyArtifact(c *cli.Context, localSource bool) error {
	args, err := arguments(c, 2, 2, c.Command.Name+" SRC DST")
	if err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	srcRef, err := parseReference(args[0])
	if err != nil {
		return err
	}
	dstRef, err := parseReference(args[1])
	if err != nil {
		return err
	}
	if localSource && srcRef.Transport != artifact.Layout && srcRef.Transport != artifact.Archive {
		return cliutil.Usagef("push: %s: SRC must be an oci:DIR layout or oci-archive:FILE (use copy between registries)", srcRef)
	}

	src, err := open(c, srcRef, false)
	if err != nil {
		return err
	}
	defer src.Close()
	root, err := src.ResolveReference(c.Context)
	if err != nil {
		return err
	}
	if dstRef.Digest != "" && dstRef.Digest != root.Digest {
		return fmt.Errorf("%s: the source is %s, not the digest DST names", dstRef, root.Digest)
	}
	tag := dstRef.Tag
	if tag == "" {
		tag = srcRef.Tag
	}
	if tag == "" && srcRef.Digest == "" {
		tag = artifact.DefaultTag
	}
	verb := "copied"
	if localSource {
		verb = "pushed"
	}
	m := newMeter(c, verb)
	result, err := write(c, src, root, dstRef, tag, artifact.CopyOptions{
		SkipReferrers: c.Bool("skip-referrers"),
		OnCopied:      m.onCopied(),
	})
	m.finish()
	if err != nil {
		return fmt.Errorf("%s to %w", srcRef, err)
	}
	for _, sk := range result.Skipped {
		fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", sk)
	}

	pinned := dstRef
	pinned.Tag = tag
	pinned = pinned.WithDigest(root.Digest)
	if !asJSON {
		if m != nil {
			fmt.Fprintf(c.App.ErrWriter, "%s: %d referrers, %d cosign tags\n", pinned, len(result.Referrers), len(result.Tags))
		}
		_, err := fmt.Fprintln(c.App.Writer, root.Digest)
		return err
	}
	out := copyOutput{
		Envelope:    newEnvelope(strings.ToUpper(c.Command.Name[:1]) + c.Command.Name[1:]),
		Source:      srcRef.String(),
		Destination: pinned.String(),
		Digest:      root.Digest,
		MediaType:   result.Root.MediaType,
		Size:        root.Size,
		Referrers:   []referrerOutput{},
		Tags:        append([]string{}, result.Tags...),
		Skipped:     []skippedOutput{},
	}
	for _, sk := range result.Skipped {
		out.Skipped = append(out.Skipped, skippedOutput{Digest: sk.Descriptor.Digest, Subject: sk.Subject, Reason: string(sk.Reason), Detail: sk.Detail})
	}
	for _, r := range result.Referrers {
		out.Referrers = append(out.Referrers, referrerOutput{Digest: r.Digest, MediaType: r.MediaType, ArtifactType: r.ArtifactType})
	}
	return cliutil.WriteJSON(c.App.Writer, out)
}
