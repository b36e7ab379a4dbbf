package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/urfave/cli/v2"
	"oras.land/oras-go/v2/errdef"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

var discoverCommand = &cli.Command{
	Name:      "discover",
	Usage:     "show an artifact's referrers: signatures, attestations, SBOMs",
	ArgsUsage: "REF",
	Description: `Resolves REF once to a digest and lists what refers to it: OCI 1.1 referrers
(through the registry's referrers API or the sha256-<hex> tag index, or a
layout's manifests whose subject it is), with their referrers in turn, and
cosign's sha256-<hex>.sig/.att/.sbom tags. Sigstore bundles are labelled
signature or attestation with their predicate type. Nothing is verified and
no key is needed: use verify for that.`,
	Flags: flags([]cli.Flag{
		&cli.IntFlag{Name: "depth", Value: 3, Usage: "how many levels of referrers of referrers to follow (1 to 8)"},
		outputFlag,
	}, registryFlags),
	Action: discover,
}

// discoverOutput is what `discover --output json` writes.
type discoverOutput struct {
	Envelope
	// Reference is REF pinned to its digest.
	Reference string         `json:"reference"`
	Digest    string         `json:"digest"`
	MediaType string         `json:"mediaType"`
	Referrers []referrerNode `json:"referrers"`
	// Tags are cosign's tags for the digest that exist.
	Tags []cosignTag `json:"tags"`
}

// referrerNode is one referrer and its own referrers.
type referrerNode struct {
	Digest       string            `json:"digest"`
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Size         int64             `json:"size"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	// Kind is signature, attestation or empty; PredicateType a bundle's.
	Kind          string         `json:"kind,omitempty"`
	PredicateType string         `json:"predicateType,omitempty"`
	Referrers     []referrerNode `json:"referrers,omitempty"`
}

// cosignTag is a cosign tag of the digest.
type cosignTag struct {
	Tag    string `json:"tag"`
	Digest string `json:"digest"`
	Kind   string `json:"kind"`
}

// maxDiscovered bounds the referrers discover lists in all.
const maxDiscovered = 1000

func discover(c *cli.Context) error {
	args, err := arguments(c, 1, 1, "one reference")
	if err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	depth := c.Int("depth")
	if depth < 1 || depth > 8 {
		return cliutil.Usagef("discover: --depth %d: want 1 to 8", depth)
	}
	ref, err := parseReference(args[0])
	if err != nil {
		return err
	}
	if ref.Transport == artifact.File {
		return cliutil.Usagef("%s: a local file has no referrers", ref)
	}
	target, err := open(c, ref, false)
	if err != nil {
		return err
	}
	defer target.Close()
	root, err := resolve(c, target, ref)
	if err != nil {
		return err
	}
	d := &discoverer{target: target, left: maxDiscovered}
	out := discoverOutput{Envelope: newEnvelope("Discover"), Reference: ref.WithDigest(root.Digest).String(), Digest: root.Digest.String(), MediaType: root.MediaType, Tags: []cosignTag{}}
	if out.Referrers, err = d.referrers(c.Context, root, depth); err != nil {
		return fmt.Errorf("%s: referrers: %w", ref, err)
	}
	for _, t := range []struct{ tag, kind string }{
		{verify.LegacySignatureTag(root.Digest), "signatures (cosign legacy)"},
		{verify.LegacyAttestationTag(root.Digest), "attestations (cosign legacy)"},
		{strings.TrimSuffix(verify.LegacySignatureTag(root.Digest), ".sig") + ".sbom", "SBOM (cosign legacy)"},
	} {
		desc, err := target.Resolve(c.Context, t.tag)
		switch {
		case errors.Is(err, errdef.ErrNotFound) || errors.Is(classifyNotFound(err), artifact.ErrNotFound):
			continue
		case err != nil:
			return fmt.Errorf("%s: tag %s: %w", ref, t.tag, err)
		}
		out.Tags = append(out.Tags, cosignTag{Tag: t.tag, Digest: desc.Digest.String(), Kind: t.kind})
	}
	if asJSON {
		return cliutil.WriteJSON(c.App.Writer, out)
	}
	return renderDiscovery(c.App.Writer, out)
}

type discoverer struct {
	target *artifact.Target
	left   int
}

// referrers lists desc's referrers, depth levels deep.
func (d *discoverer) referrers(ctx context.Context, desc ocispec.Descriptor, depth int) ([]referrerNode, error) {
	var found []ocispec.Descriptor
	err := d.target.Referrers(ctx, desc, "", func(page []ocispec.Descriptor) error {
		found = append(found, page...)
		if len(found) > d.left {
			return fmt.Errorf("more than %d referrers", maxDiscovered)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errdef.ErrNotFound) {
		return nil, err
	}
	d.left -= len(found)
	slices.SortFunc(found, func(a, b ocispec.Descriptor) int { return strings.Compare(a.Digest.String(), b.Digest.String()) })
	nodes := []referrerNode{}
	for _, r := range found {
		n := referrerNode{Digest: r.Digest.String(), MediaType: r.MediaType, ArtifactType: r.ArtifactType, Size: r.Size, Annotations: r.Annotations}
		if p, ok := r.Annotations[verify.AnnotationBundlePredicateType]; ok {
			n.PredicateType, n.Kind = p, "attestation"
			if p == verify.SignPredicateType {
				n.Kind = "signature"
			}
		}
		if depth > 1 {
			if n.Referrers, err = d.referrers(ctx, r, depth-1); err != nil {
				return nil, err
			}
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// renderDiscovery writes the referrers as a tree.
func renderDiscovery(w io.Writer, out discoverOutput) error {
	fmt.Fprintln(w, out.Reference)
	var walk func(nodes []referrerNode, indent string)
	walk = func(nodes []referrerNode, indent string) {
		for i, n := range nodes {
			branch, next := "├── ", "│   "
			if i == len(nodes)-1 {
				branch, next = "└── ", "    "
			}
			label := n.ArtifactType
			if label == "" {
				label = n.MediaType
			}
			if n.Kind != "" {
				label += "  " + n.Kind + " " + n.PredicateType
			}
			fmt.Fprintf(w, "%s%s%s  %s\n", indent, branch, n.Digest, label)
			walk(n.Referrers, indent+next)
		}
	}
	walk(out.Referrers, "")
	for _, t := range out.Tags {
		fmt.Fprintf(w, "tag %s  %s  %s\n", t.Tag, t.Digest, t.Kind)
	}
	if len(out.Referrers) == 0 && len(out.Tags) == 0 {
		fmt.Fprintln(w, "(no referrers)")
	}
	return nil
}
