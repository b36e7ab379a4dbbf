package artifact

import (
	"context"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// Description is what Inspect tells about an artifact.
type Description struct {
	// Root is the descriptor Inspect was given.
	Root ocispec.Descriptor
	// Annotations are the root manifest's or index's annotations.
	Annotations map[string]string
	// Size is the total size in bytes of the root and every manifest,
	// config and layer it references, each counted once.
	Size int64
	// Manifests are the manifest itself, or the index's entries in order.
	Manifests []Manifest
}

// Inspect reads the description of the artifact desc describes, for every
// platform: manifests, configs and objects, checked as Fetch checks them (a
// config that disagrees with its objects is refused). Errors are those of
// Fetch.
func Inspect(ctx context.Context, store content.Fetcher, desc ocispec.Descriptor) (*Description, error) {
	root, err := fetchNode(ctx, store, desc, maxMetadataSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", nodeName(desc), err)
	}
	desc = root.Descriptor // the type the content has, not the one claimed
	d := &Description{Root: desc, Size: desc.Size}
	entries := []ocispec.Descriptor{desc}
	if root.IsIndex() {
		index, err := readIndexNode(root)
		if err != nil {
			return nil, err
		}
		if len(index.Manifests) == 0 {
			return nil, fmt.Errorf("index %s: %w: no manifests", desc.Digest, ErrUnsupported)
		}
		d.Annotations = index.Annotations
		entries = index.Manifests
	}
	counted := map[string]bool{desc.Digest.String(): true}
	add := func(b ocispec.Descriptor) {
		if !counted[b.Digest.String()] {
			counted[b.Digest.String()] = true
			d.Size += b.Size
		}
	}
	for _, e := range entries {
		n := root
		if root.IsIndex() {
			if n, err = fetchNode(ctx, store, e, maxMetadataSize); err != nil {
				return nil, fmt.Errorf("manifest %s: %w", e.Digest, err)
			}
		}
		mc, err := readManifestNode(ctx, store, n, true)
		if err != nil {
			return nil, err
		}
		mc.Platform = e.Platform
		if !root.IsIndex() {
			d.Annotations = mc.Annotations
		}
		add(n.Descriptor)
		add(mc.configDesc)
		for _, l := range mc.layers {
			add(l)
		}
		d.Manifests = append(d.Manifests, mc.Manifest)
	}
	return d, nil
}
