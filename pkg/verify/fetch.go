package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
)

// Limits on what FetchSignatures reads, so that a hostile registry cannot
// make a verifier read without end.
const (
	// MaxSignatures is the most signature manifests plus legacy layers read
	// for one artifact; more is ErrTooManySignatures.
	MaxSignatures = 1000
	// maxManifestSize and maxLayerSize bound a signature manifest and a
	// bundle or payload layer.
	maxManifestSize = 4 << 20
	maxLayerSize    = 4 << 20
	// fetchConcurrency bounds the reads in flight at once.
	fetchConcurrency = 8
)

// FetchSignatures reads every signature stored for the manifest subject in
// src, in both formats: bundles among its referrers and the layers of its
// legacy ".sig" manifest. Referrers that are not Sigstore bundles (SBOMs,
// attestations labelled as such) are skipped. A signature that cannot be
// read, or that is stored for another digest, is returned with Err set, so
// the verdict can say so; the error is for failures to reach src.
func FetchSignatures(ctx context.Context, src Source, subject ocispec.Descriptor) ([]*Signature, error) {
	bundles, err := fetchBundles(ctx, src, subject, false)
	if err != nil {
		return nil, err
	}
	legacy, err := fetchLegacy(ctx, src, subject, MaxSignatures-len(bundles))
	if err != nil {
		return nil, err
	}
	return append(bundles, legacy...), nil
}

// FetchAttestations reads every in-toto attestation stored for the manifest
// subject in src, as FetchSignatures reads signatures: Sigstore bundles among
// its referrers whose statement has another predicate type than a
// signature's (as cosign v3 attest writes them), and the DSSE envelopes of
// its legacy "sha256-<hex>.att" manifest (cosign v2's default). Each is
// returned as a *Signature whose PredicateType says what it attests.
func FetchAttestations(ctx context.Context, src Source, subject ocispec.Descriptor) ([]*Signature, error) {
	bundles, err := fetchBundles(ctx, src, subject, true)
	if err != nil {
		return nil, err
	}
	legacy, err := fetchLegacyAttestations(ctx, src, subject, MaxSignatures-len(bundles))
	if err != nil {
		return nil, err
	}
	return append(bundles, legacy...), nil
}

// fetchBundles reads the bundles among subject's referrers, ordered by
// manifest digest: signatures, or attestations.
func fetchBundles(ctx context.Context, src Source, subject ocispec.Descriptor, attestations bool) ([]*Signature, error) {
	preds, err := src.Predecessors(ctx, subject)
	if err != nil && !errors.Is(err, errdef.ErrNotFound) {
		return nil, fmt.Errorf("referrers of %s: %w", subject.Digest, err)
	}
	preds = slices.DeleteFunc(preds, func(d ocispec.Descriptor) bool {
		// Referrers are image manifests; an index listing the subject (a
		// multi-platform artifact in a layout) is not one.
		return d.MediaType != ocispec.MediaTypeImageManifest
	})
	if len(preds) > MaxSignatures {
		return nil, fmt.Errorf("%s has %d referrers, more than %d: %w", subject.Digest, len(preds), MaxSignatures, ErrTooManySignatures)
	}
	slices.SortFunc(preds, func(a, b ocispec.Descriptor) int { return strings.Compare(a.Digest.String(), b.Digest.String()) })
	preds = slices.CompactFunc(preds, func(a, b ocispec.Descriptor) bool { return a.Digest == b.Digest })

	perManifest, err := inParallel(ctx, len(preds), func(ctx context.Context, i int) ([]*Signature, error) {
		return fetchBundleManifest(ctx, src, subject, preds[i], attestations)
	})
	if err != nil {
		return nil, err
	}
	return slices.Concat(perManifest...), nil
}

// fetchBundleManifest reads one referrer manifest and, if it holds bundles,
// each bundle layer.
func fetchBundleManifest(ctx context.Context, src Source, subject, desc ocispec.Descriptor, attestations bool) ([]*Signature, error) {
	raw, err := fetchLimited(ctx, src, desc, maxManifestSize)
	if err != nil {
		if unusable(err) {
			return []*Signature{unreadable(FormatBundle, desc.Digest, "", err)}, nil
		}
		return nil, fmt.Errorf("referrer %s: %w", desc.Digest, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return []*Signature{unreadable(FormatBundle, desc.Digest, "", fmt.Errorf("referrer manifest: %w", err))}, nil
	}
	if !holdsBundles(m, attestations) {
		return nil, nil
	}
	if m.Subject == nil || m.Subject.Digest != subject.Digest {
		var other string
		if m.Subject != nil {
			other = m.Subject.Digest.String()
		}
		return []*Signature{{Format: FormatBundle, Manifest: desc.Digest, problem: ReasonDigestMismatch,
			err: fmt.Errorf("referrer manifest's subject is %q, not %s", other, subject.Digest)}}, nil
	}
	if n := len(m.Layers); n == 0 || n > MaxSignatures {
		return []*Signature{unreadable(FormatBundle, desc.Digest, "", fmt.Errorf("referrer manifest has %d layers", n))}, nil
	}
	var sigs []*Signature
	for _, layer := range m.Layers {
		s, err := fetchBundleLayer(ctx, src, desc, layer, attestations)
		if err != nil {
			return nil, err
		}
		if s != nil {
			sigs = append(sigs, s)
		}
	}
	return sigs, nil
}

// holdsBundles reports whether a referrer manifest claims to hold Sigstore
// bundles of the kind asked for. cosign labels a bundle referrer with its
// statement's predicate type: a signature's, or an attestation's.
func holdsBundles(m ocispec.Manifest, attestations bool) bool {
	if p, ok := m.Annotations[AnnotationBundlePredicateType]; ok && (p == SignPredicateType) == attestations {
		return false
	}
	if isBundleMediaType(m.ArtifactType) {
		return true
	}
	return slices.ContainsFunc(m.Layers, func(l ocispec.Descriptor) bool { return isBundleMediaType(l.MediaType) })
}

// fetchBundleLayer reads and parses one bundle layer; the error is for
// failures to reach src. An unlabelled bundle of the other kind (a
// signature among attestations, or the reverse) is skipped: nil.
func fetchBundleLayer(ctx context.Context, src Source, manifest, layer ocispec.Descriptor, attestations bool) (*Signature, error) {
	if !isBundleMediaType(layer.MediaType) {
		return unreadable(FormatBundle, manifest.Digest, layer.Digest, fmt.Errorf("layer media type %q is not a Sigstore bundle", layer.MediaType)), nil
	}
	data, err := fetchLimited(ctx, src, layer, maxLayerSize)
	if err != nil {
		if unusable(err) {
			return unreadable(FormatBundle, manifest.Digest, layer.Digest, err), nil
		}
		return nil, fmt.Errorf("bundle %s: %w", layer.Digest, err)
	}
	s, err := parseBundleStatement(data)
	if err != nil {
		return unreadable(FormatBundle, manifest.Digest, layer.Digest, err), nil
	}
	if (s.predicateType == SignPredicateType) == attestations {
		return nil, nil
	}
	s.Manifest, s.Layer = manifest.Digest, layer.Digest
	return s, nil
}

// fetchLegacy reads the layers of subject's ".sig" manifest, at most limit.
func fetchLegacy(ctx context.Context, src Source, subject ocispec.Descriptor, limit int) ([]*Signature, error) {
	tag := LegacySignatureTag(subject.Digest)
	desc, err := src.Resolve(ctx, tag)
	if errors.Is(err, errdef.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("signature tag %s: %w", tag, err)
	}
	raw, err := fetchLimited(ctx, src, desc, maxManifestSize)
	if err != nil {
		if unusable(err) {
			return []*Signature{unreadable(FormatLegacy, desc.Digest, "", err)}, nil
		}
		return nil, fmt.Errorf("signature manifest %s: %w", tag, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return []*Signature{unreadable(FormatLegacy, desc.Digest, "", fmt.Errorf("signature manifest: %w", err))}, nil
	}
	if len(m.Layers) > limit {
		return nil, fmt.Errorf("%s has %d layers, more than %d: %w", tag, len(m.Layers), limit, ErrTooManySignatures)
	}
	return inParallel(ctx, len(m.Layers), func(ctx context.Context, i int) (*Signature, error) {
		return fetchLegacyLayer(ctx, src, desc, m.Layers[i])
	})
}

// fetchLegacyLayer reads and parses one legacy signature layer; the error is
// for failures to reach src.
func fetchLegacyLayer(ctx context.Context, src Source, manifest, layer ocispec.Descriptor) (*Signature, error) {
	if layer.MediaType != SimpleSigningMediaType {
		return unreadable(FormatLegacy, manifest.Digest, layer.Digest, fmt.Errorf("layer media type %q: want %s", layer.MediaType, SimpleSigningMediaType)), nil
	}
	data, err := fetchLimited(ctx, src, layer, maxLayerSize)
	if err != nil {
		if unusable(err) {
			return unreadable(FormatLegacy, manifest.Digest, layer.Digest, err), nil
		}
		return nil, fmt.Errorf("signature payload %s: %w", layer.Digest, err)
	}
	s, err := parseLegacy(layer, data)
	if err != nil {
		return unreadable(FormatLegacy, manifest.Digest, layer.Digest, err), nil
	}
	s.Manifest, s.Layer = manifest.Digest, layer.Digest
	return s, nil
}

// fetchLimited reads desc from src if it is at most limit bytes, checking
// its size and digest.
func fetchLimited(ctx context.Context, src content.Fetcher, desc ocispec.Descriptor, limit int64) ([]byte, error) {
	if desc.Size > limit {
		return nil, &contentError{desc: desc, err: fmt.Errorf("%d bytes, more than the %d bytes allowed", desc.Size, limit)}
	}
	rc, err := src.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := content.ReadAll(rc, desc)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, content.ErrMismatchedDigest), errors.Is(err, content.ErrTrailingData):
		return nil, &contentError{desc: desc, err: err}
	case err != nil:
		return nil, err
	}
	return b, nil
}

// contentError is content that was fetched but is not what its descriptor
// says: truncated, too large, or of another digest.
type contentError struct {
	desc ocispec.Descriptor
	err  error
}

func (e *contentError) Error() string {
	if errors.Is(e.err, io.ErrUnexpectedEOF) {
		return "blob " + e.desc.Digest.String() + " is truncated"
	}
	return "blob " + e.desc.Digest.String() + ": " + e.err.Error()
}

func (e *contentError) Unwrap() error { return e.err }

// unusable reports whether err means the content is bad (missing, truncated,
// too large, of another digest) rather than that the store could not be
// reached.
func unusable(err error) bool {
	var ce *contentError
	return errors.As(err, &ce) || errors.Is(err, errdef.ErrNotFound)
}

// inParallel calls fetch for 0..n-1, at most fetchConcurrency at a time, and
// returns the results in order, or the first error.
func inParallel[T any](ctx context.Context, n int, fetch func(context.Context, int) (T, error)) ([]T, error) {
	out := make([]T, n)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(fetchConcurrency)
	for i := range n {
		g.Go(func() error {
			v, err := fetch(ctx, i)
			out[i] = v
			return err
		})
	}
	return out, g.Wait()
}
