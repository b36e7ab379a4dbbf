package artifact

import (
	"context"
	"errors"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
)

// CosignTagSuffixes are the suffixes of the tags under which cosign stores
// the signatures, attestations and SBOMs of digest sha256:<hex>, as
// "sha256-<hex>.sig": manifests that point at their subject only by name.
var CosignTagSuffixes = []string{".sig", ".att", ".sbom"}

// DefaultCopyConcurrency is how many blobs Copy transfers at once by
// default, as oras does.
const DefaultCopyConcurrency = 3

// CopyOptions configures Copy. The zero value copies the artifact with its
// referrers of every type and its cosign-style tags, within the default
// Limits, three blobs at a time.
type CopyOptions struct {
	// SkipReferrers copies the artifact alone: no referrers, no
	// cosign-style tags.
	SkipReferrers bool
	// ReferrerTypes, if not empty, copies only the referrers whose
	// artifact type (that of their content) is listed; the others are
	// skipped and reported. Empty copies referrers of every type.
	ReferrerTypes []string
	// TagSuffixes are the cosign-style tags copied along: the manifest
	// tagged "sha256-<hex>"+suffix for the root and each manifest of an
	// index. Nil means CosignTagSuffixes; an empty, non-nil slice copies
	// none.
	TagSuffixes []string
	// SkipLayers copies everything but the artifact's layers: its index,
	// manifests and configs, and its referrers and tagged manifests in
	// full. A later Copy without it adds the layers. It lets a reader
	// check signatures, and read configs, before it fetches the layers.
	// The artifact is then incomplete in dst: Copy refuses a tag with it.
	SkipLayers bool
	// Concurrency is how many blobs are transferred at once; 0 means
	// DefaultCopyConcurrency.
	Concurrency int
	// Limits bound the copy; the zero value is the defaults.
	Limits Limits
	// OnCopied, if set, is called after each manifest or blob is written to
	// the destination (not for those it already had). It may be called from
	// several goroutines at once.
	OnCopied func(ocispec.Descriptor)
	// OnProgress, if set, is called as a blob's bytes stream through with
	// the number read so far. It may be called from several goroutines at
	// once.
	OnProgress func(desc ocispec.Descriptor, read int64)
}

// CopyResult reports what Copy wrote.
type CopyResult struct {
	// Root is the artifact's descriptor, with the media type and artifact
	// type of its content.
	Root ocispec.Descriptor
	// Referrers are the manifests copied because their subject is the
	// artifact, one of its manifests, or another referrer (OCI 1.1
	// referrers: signatures, attestations, SBOMs).
	Referrers []ocispec.Descriptor
	// Tags are the cosign-style tags copied along ("sha256-<hex>.sig").
	Tags []string
	// Skipped are the referrers and tagged manifests not copied, and why.
	Skipped []SkippedReferrer
	// Bytes is how many bytes were written (what dst had already is not
	// counted).
	Bytes int64
}

// Copy copies the artifact root from src to dst and tags it there with tag,
// unless tag is empty. Unless opts.SkipReferrers, it carries along the
// artifact's referrers (found through the OCI 1.1 referrers API, the
// "sha256-<hex>" tag schema a registry without it uses, or a layout's
// subjects; see ListReferrers), recursively, and the manifests tagged with
// opts.TagSuffixes for the root or one of its manifests. Referrers written
// to a registry without the referrers API are indexed under the tag schema;
// a registry that refuses to delete the index this replaces keeps it,
// untagged, which is not an error.
//
// Copy works on any artifact, not only bytecode, and never holds a blob in
// memory: it first reads the graph's manifests and indexes (each within
// Limits.ManifestSize, verified against its digest, its type taken from its
// content), checking every size against opts.Limits; then streams the
// blobs dst lacks from src to dst, opts.Concurrency at a time, each verified
// against its digest and size as it passes (see CopyBlob); then writes the
// manifests, children before parents; and the tags last, the root's after
// all others. So when anything fails, dst does not have tag (nor a
// cosign-style tag): a registry keeps the blobs written, unreferenced, and
// an OCI layout or archive opened as a *Target is put back as it was by
// Target.Discard.
//
// A referrer or tagged manifest that is of a type not asked for, past a
// count of Limits, over a size, or whose content is missing, tampered or
// malformed is skipped and reported in the result, never a failure. The
// artifact itself over a limit fails with a *LimitError; missing or tampered
// with ErrNotFound or ErrDigestMismatch, naming the blob.
func Copy(ctx context.Context, src oras.ReadOnlyGraphTarget, root ocispec.Descriptor, dst oras.Target, tag string, opts CopyOptions) (*CopyResult, error) {
	if opts.SkipLayers && tag != "" {
		return nil, fmt.Errorf("tag %s: %w: an artifact copied without its layers cannot be tagged", tag, ErrUnsupported)
	}
	p := newCopyPlan(src, opts)
	if err := p.planArtifact(ctx, root); err != nil {
		return nil, err
	}
	if !opts.SkipReferrers {
		if err := p.planReferrers(ctx); err != nil {
			return nil, err
		}
		if err := p.planTags(ctx); err != nil {
			return nil, err
		}
	}
	result, err := p.execute(ctx, dst)
	if err != nil {
		return nil, err
	}
	if tag != "" {
		if err := dst.Tag(ctx, result.Root, tag); err != nil {
			return nil, fmt.Errorf("tag %s: %w", tag, classify(err))
		}
	}
	return result, nil
}

// tolerateReferrersIndexDelete drops the error oras-go gives when, after
// indexing a referrer under the tag schema, the registry refuses to delete
// the index it replaced (distribution's default: deletes disabled). The
// referrer and the new index are in place.
func tolerateReferrersIndexDelete(err error) error {
	var re *remote.ReferrersError
	if errors.As(err, &re) && re.IsReferrersIndexDelete() {
		return nil
	}
	return err
}

// isAlreadyExists reports whether err says the content was there already.
func isAlreadyExists(err error) bool { return errors.Is(err, errdef.ErrAlreadyExists) }

// referrerTag is the cosign-style tag of a manifest for suffix.
func referrerTag(desc ocispec.Descriptor, suffix string) string {
	return strings.Replace(desc.Digest.String(), ":", "-", 1) + suffix
}
