package supplychain

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/oci"

	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// An artifact's evidence from one origin is what the trust policy reads
// when it judges the artifact under that origin's name: the origin's
// signature and attestation referrers and its cosign .sig and .att tags,
// with the artifact's manifests and configs (never its layers). Each is an
// OCI layout of its own under evidence/, written whole by one pull into a
// new directory and then recorded in the artifact's entry, so that a crash
// leaves the record pointing at complete evidence, and no origin's pull can
// change what another origin served.

// evidenceTypes are the referrer types pulled as evidence: Sigstore
// bundles, which hold both signatures and attestations. Referrers of other
// types are skipped without being fetched.
var evidenceTypes = []string{verify.BundleMediaType}

// evidenceTags are the cosign tags pulled as evidence: legacy signatures
// and attestations.
var evidenceTags = []string{".sig", ".att"}

// evidenceParent returns the directory holding the evidence of the
// artifact d, relative to the cache dir.
func evidenceParent(d digest.Digest) string {
	return filepath.Join(evidenceDir, d.Algorithm().String(), d.Encoded())
}

// validEvidencePath reports whether rel names an evidence layout of d:
// a record's path is trusted only that far.
func validEvidencePath(rel string, d digest.Digest) bool {
	dir, name := filepath.Split(rel)
	return filepath.Clean(dir) == evidenceParent(d) && name != "" && !strings.HasPrefix(name, ".") && filepath.Base(rel) == name
}

// pullEvidence copies from src what it serves of root but the layers
// (CopyOptions.SkipLayers: manifests, configs, and the referrers and tags of
// evidenceTypes and evidenceTags, within the cache's limits) into a new
// evidence layout. It returns the layout's path relative to the cache dir
// and the copy's result, whose Root has the media type of root's content.
// Nothing is recorded: the caller records the layout as the origin's.
func (c *cache) pullEvidence(ctx context.Context, src *artifact.Target, root ocispec.Descriptor) (string, *artifact.CopyResult, error) {
	parent := filepath.Join(c.dir, evidenceParent(root.Digest))
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", nil, fmt.Errorf("cache: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".new-")
	if err != nil {
		return "", nil, fmt.Errorf("cache: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(tmp)
		}
	}()
	store, err := oci.NewWithContext(ctx, tmp)
	if err != nil {
		return "", nil, fmt.Errorf("cache: %w", err)
	}
	limits := c.limits
	limits.ReferrerDepth = 1 // signatures of signatures are not read
	result, err := artifact.Copy(ctx, src, root, store, "", artifact.CopyOptions{
		SkipLayers:    true,
		ReferrerTypes: evidenceTypes,
		TagSuffixes:   evidenceTags,
		Limits:        limits,
	})
	if err != nil {
		return "", nil, fmt.Errorf("pull: %w", err)
	}
	if err := os.RemoveAll(filepath.Join(tmp, ingestDir)); err != nil {
		return "", nil, fmt.Errorf("cache: %w", err)
	}
	final := filepath.Join(parent, strings.TrimPrefix(filepath.Base(tmp), ".new-"))
	if err := os.Rename(tmp, final); err != nil {
		return "", nil, fmt.Errorf("cache: %w", err)
	}
	keep = true
	rel, _ := filepath.Rel(c.dir, final)
	return rel, result, nil
}

// evidenceStore opens the evidence layout at rel (relative to the cache
// dir), read-only. Layouts are written once, so an opened one is kept.
func (c *cache) evidenceStore(ctx context.Context, rel string) (*oci.ReadOnlyStore, error) {
	dir := filepath.Join(c.dir, rel)
	if _, err := os.Stat(filepath.Join(dir, ocispec.ImageIndexFile)); err != nil {
		c.mu.Lock()
		delete(c.evidence, rel)
		c.mu.Unlock()
		return nil, fmt.Errorf("cache: evidence %s: %w", rel, errEvidenceGone)
	}
	c.mu.Lock()
	s, ok := c.evidence[rel]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err := oci.NewFromFS(ctx, os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("cache: evidence %s: %w", rel, err)
	}
	c.mu.Lock()
	if len(c.evidence) >= maxOpenEvidence {
		clear(c.evidence)
	}
	c.evidence[rel] = s
	c.mu.Unlock()
	return s, nil
}

// maxOpenEvidence bounds the evidence layouts kept open.
const maxOpenEvidence = 1024

// errEvidenceGone: an evidence layout a record names is not there
// (removed by hand, or a damaged cache).
var errEvidenceGone = errors.New("not in the cache")

// removeEvidence removes the evidence layout at rel.
func (c *cache) removeEvidence(rel string) {
	c.mu.Lock()
	delete(c.evidence, rel)
	c.mu.Unlock()
	if err := os.RemoveAll(filepath.Join(c.dir, rel)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.log.Warn("cache: cannot remove replaced signatures", "path", filepath.Join(c.dir, rel), "error", err)
	}
}
