package artifact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
)

// cosignTagSuffixes are the suffixes of the tags under which cosign stores
// signatures, attestations and SBOMs of digest sha256:<hex>, as
// "sha256-<hex>.sig": artifacts that point at their subject only by name.
var cosignTagSuffixes = []string{".sig", ".att", ".sbom"}

// CopyOptions configures Copy. The zero value copies the artifact with its
// referrers and cosign-style tags.
type CopyOptions struct {
	// SkipReferrers copies the artifact alone: no referrers, no
	// cosign-style tags.
	SkipReferrers bool
	// OnCopied, if set, is called after each manifest or blob is written to
	// the destination (not for those it already had). It may be called from
	// several goroutines at once.
	OnCopied func(ocispec.Descriptor)
}

// CopyResult reports what Copy wrote.
type CopyResult struct {
	// Root is the artifact's descriptor.
	Root ocispec.Descriptor
	// Referrers are the manifests copied because their subject is the
	// artifact, one of its manifests, or another referrer (OCI 1.1
	// referrers: signatures, attestations, SBOMs).
	Referrers []ocispec.Descriptor
	// Tags are the cosign-style tags copied along ("sha256-<hex>.sig").
	Tags []string
}

// Copy copies the artifact root from src to dst and tags it there with tag,
// unless tag is empty. Unless opts.SkipReferrers, it carries along the
// artifact's referrers (found through the OCI 1.1 referrers API, the
// "sha256-<hex>" tag schema a registry without it uses, or a layout's
// subjects), recursively, and the manifests tagged "sha256-<hex>.sig",
// ".att" and ".sbom" for the root or one of its manifests. Referrers written
// to a registry without the referrers API are indexed under the tag schema.
//
// Copy works on any artifact, not only bytecode. It first reads the whole
// graph from src into memory, verifying every blob against its digest, and
// writes to dst only when that succeeded; the tags come last, the root's
// after all others. So a missing or tampered blob leaves dst untouched.
func Copy(ctx context.Context, src oras.ReadOnlyGraphTarget, root ocispec.Descriptor, dst oras.Target, tag string, opts CopyOptions) (*CopyResult, error) {
	staged := &stage{memory.New()}
	result := &CopyResult{Root: root}
	if err := copyGraph(ctx, src, staged, root, oras.CopyGraphOptions{}); err != nil {
		return nil, err
	}
	type taggedDesc struct {
		tag  string
		desc ocispec.Descriptor
	}
	var tagged []taggedDesc
	if !opts.SkipReferrers {
		manifests, err := manifestsOf(ctx, staged, root)
		if err != nil {
			return nil, err
		}
		referrers, err := stageReferrers(ctx, src, staged, manifests)
		if err != nil {
			return nil, err
		}
		result.Referrers = referrers
		for _, m := range manifests {
			for _, suffix := range cosignTagSuffixes {
				t := strings.Replace(m.Digest.String(), ":", "-", 1) + suffix
				desc, err := src.Resolve(ctx, t)
				if errors.Is(err, errdef.ErrNotFound) {
					continue
				}
				if err != nil {
					return nil, fmt.Errorf("tag %s: %w", t, classify(err))
				}
				if err := copyGraph(ctx, src, staged, desc, oras.CopyGraphOptions{}); err != nil {
					return nil, fmt.Errorf("tag %s: %w", t, err)
				}
				tagged = append(tagged, taggedDesc{t, desc})
				result.Tags = append(result.Tags, t)
			}
		}
	}

	// Everything is read and verified: write.
	copyOpts := oras.CopyGraphOptions{}
	if opts.OnCopied != nil {
		copyOpts.PostCopy = func(_ context.Context, desc ocispec.Descriptor) error {
			opts.OnCopied(desc)
			return nil
		}
	}
	nodes := []ocispec.Descriptor{root}
	nodes = append(nodes, result.Referrers...)
	for _, t := range tagged {
		nodes = append(nodes, t.desc)
	}
	for _, n := range nodes {
		if err := copyGraph(ctx, staged, dst, n, copyOpts); err != nil {
			return nil, err
		}
	}
	for _, t := range tagged {
		if err := dst.Tag(ctx, t.desc, t.tag); err != nil {
			return nil, fmt.Errorf("tag %s: %w", t.tag, classify(err))
		}
	}
	if tag != "" {
		if err := dst.Tag(ctx, root, tag); err != nil {
			return nil, fmt.Errorf("tag %s: %w", tag, classify(err))
		}
	}
	return result, nil
}

// manifestsOf returns root and, for an index, the manifests it lists.
func manifestsOf(ctx context.Context, store content.Fetcher, root ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	out := []ocispec.Descriptor{root}
	if !isIndex(root.MediaType) {
		return out, nil
	}
	index, err := readIndex(ctx, store, root)
	if err != nil {
		return nil, err
	}
	return append(out, index.Manifests...), nil
}

// stageReferrers copies the referrers of nodes, and theirs in turn, from src
// into staged, and returns them in the order found.
func stageReferrers(ctx context.Context, src content.ReadOnlyGraphStorage, staged *stage, nodes []ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	var found []ocispec.Descriptor
	seen := map[string]bool{}
	queue := slices.Clone(nodes)
	for len(queue) > 0 {
		node := queue[0]
		queue = queue[1:]
		referrers, err := registry.Referrers(ctx, src, node, "")
		if err != nil {
			return nil, fmt.Errorf("referrers of %s: %w", node.Digest, classify(err))
		}
		for _, r := range referrers {
			if seen[r.Digest.String()] {
				continue
			}
			seen[r.Digest.String()] = true
			if err := copyGraph(ctx, src, staged, r, oras.CopyGraphOptions{}); err != nil {
				return nil, fmt.Errorf("referrer %s of %s: %w", r.Digest, node.Digest, err)
			}
			// A tag-schema index may say less than the manifest itself.
			if t, err := artifactTypeOf(ctx, staged, r); err == nil {
				r.ArtifactType = t
			}
			found = append(found, r)
			queue = append(queue, r)
		}
	}
	return found, nil
}

// artifactTypeOf returns the artifactType of the manifest desc describes, or
// its config's media type when it has none (as OCI 1.1 defines it).
func artifactTypeOf(ctx context.Context, store content.Fetcher, desc ocispec.Descriptor) (string, error) {
	data, err := fetchBlob(ctx, store, desc, maxMetadataSize)
	if err != nil {
		return "", err
	}
	var m struct {
		ArtifactType string             `json:"artifactType"`
		Config       ocispec.Descriptor `json:"config"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return "", err
	}
	if m.ArtifactType != "" {
		return m.ArtifactType, nil
	}
	return m.Config.MediaType, nil
}

// copyGraph is oras.CopyGraph with errors a user can read.
func copyGraph(ctx context.Context, src content.ReadOnlyStorage, dst content.Storage, root ocispec.Descriptor, opts oras.CopyGraphOptions) error {
	err := oras.CopyGraph(ctx, src, dst, root, opts)
	var copyErr *oras.CopyError
	if errors.As(err, &copyErr) {
		err = copyErr.Err
	}
	return classify(err)
}

// stage is the memory store Copy reads into. It names the blob in the errors
// of its Push, which is where content is verified against its descriptor.
type stage struct {
	*memory.Store
}

func (s *stage) Push(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	if err := s.Store.Push(ctx, desc, r); err != nil {
		return fmt.Errorf("%s: %w", blobName(desc), classify(err))
	}
	return nil
}

// blobName names a blob for an error message: its role, digest and title.
func blobName(desc ocispec.Descriptor) string {
	kind := "blob"
	switch {
	case isIndex(desc.MediaType):
		kind = "index"
	case desc.MediaType == ocispec.MediaTypeImageManifest || desc.MediaType == mediaTypeDockerManifest:
		kind = "manifest"
	case desc.MediaType == MediaTypeConfig || desc.MediaType == ocispec.MediaTypeImageConfig || desc.MediaType == mediaTypeDockerConfig:
		kind = "config"
	case desc.MediaType == MediaTypeObject || strings.Contains(desc.MediaType, "layer"):
		kind = "layer"
	}
	s := kind + " " + desc.Digest.String()
	if title := desc.Annotations[ocispec.AnnotationTitle]; title != "" {
		s += " (" + title + ")"
	}
	return s
}
