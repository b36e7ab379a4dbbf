package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
)

// FetchBlob fetches the blob desc describes from src into memory, verified
// against its digest and size. It is for small blobs (configs, signature
// bundles): a descriptor claiming more than max bytes is refused with a
// *LimitError before anything is read. Errors wrap ErrNotFound,
// ErrDigestMismatch, ErrUnsupported, ErrLimit or ErrUnreachable.
func FetchBlob(ctx context.Context, src content.Fetcher, desc ocispec.Descriptor, max int64) ([]byte, error) {
	data, err := fetchBlob(ctx, src, desc, max)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", blobName(desc), err)
	}
	return data, nil
}

// fetchBlob is FetchBlob with errors that do not name the blob.
func fetchBlob(ctx context.Context, store content.Fetcher, desc ocispec.Descriptor, limit int64) ([]byte, error) {
	if desc.Size < 0 {
		return nil, fmt.Errorf("%w: negative size %d", ErrUnsupported, desc.Size)
	}
	if desc.Size > limit {
		return nil, &LimitError{Limit: limitName(desc), Value: desc.Size, Max: limit}
	}
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("%w: digest %q: %v", ErrUnsupported, desc.Digest, err)
	}
	data, err := content.FetchAll(ctx, store, desc)
	if err = classify(err); errors.Is(err, ErrNotFound) {
		return nil, ErrNotFound // the library's text repeats the descriptor
	}
	return data, err
}

// limitName is the field of Limits that bounds a blob of desc's kind.
func limitName(desc ocispec.Descriptor) string {
	switch {
	case isManifestType(desc.MediaType):
		return "ManifestSize"
	case isConfigType(desc.MediaType):
		return "ConfigSize"
	case desc.MediaType == MediaTypeObject:
		return "ObjectSize"
	}
	return "BlobSize"
}

func isConfigType(mediaType string) bool {
	return mediaType == MediaTypeConfig || mediaType == ocispec.MediaTypeImageConfig || mediaType == mediaTypeDockerConfig
}

// CopyBlob copies the blob desc describes from src to dst without holding it
// in memory: the bytes stream through, checked against desc's size and digest
// as they pass. Content that does not match fails the read before its end,
// so the destination never completes the write: a registry is left with an
// unfinished upload, an OCI layout with no blob (oras-go's layout store
// writes into a temporary file that it removes). A descriptor claiming more
// than max bytes is refused with a *LimitError before anything is read.
// Errors name the blob and wrap ErrNotFound, ErrDigestMismatch,
// ErrUnsupported, ErrLimit or ErrUnreachable.
func CopyBlob(ctx context.Context, src content.Fetcher, dst content.Pusher, desc ocispec.Descriptor, max int64) error {
	if err := checkSize(blobName(desc), "BlobSize", desc.Size, max); err != nil {
		return err
	}
	if err := copyBlob(ctx, src, dst, desc, nil); err != nil {
		return fmt.Errorf("%s: %w", blobName(desc), err)
	}
	return nil
}

// copyBlob streams desc from src to dst through a verifyingReader; progress,
// if set, is told the bytes read so far. Its errors do not name the blob.
func copyBlob(ctx context.Context, src content.Fetcher, dst content.Pusher, desc ocispec.Descriptor, progress func(int64)) error {
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("%w: digest %q: %v", ErrUnsupported, desc.Digest, err)
	}
	rc, err := src.Fetch(ctx, desc)
	if err != nil {
		if err = classify(err); errors.Is(err, ErrNotFound) {
			return ErrNotFound
		}
		return err
	}
	defer rc.Close()
	vr := &verifyingReader{r: rc, desc: desc, progress: progress}
	if !verifiesPushes(dst) {
		vr.verifier = desc.Digest.Verifier()
	}
	err = dst.Push(ctx, desc, vr)
	switch {
	case vr.err != nil:
		// The destination's error about a body that failed is vaguer
		// than the reason it failed.
		return vr.err
	case errors.Is(err, errdef.ErrAlreadyExists):
		return nil
	}
	return classify(err)
}

// verifiesPushes reports whether dst checks what is pushed to it against the
// digest before it keeps it, so that hashing the content on the way too
// would only double the work: an OCI layout opened by this package (whose
// oras-go storage verifies, and whose leftovers layoutStore removes).
// Registries verify too, but a stream cut short of its end by our own check
// never completes an upload, and the error then names the source's fault.
func verifiesPushes(dst content.Pusher) bool {
	if t, ok := dst.(*Target); ok {
		dst = t.GraphTarget
	}
	_, ok := dst.(*layoutStore)
	return ok
}

// verifyingReader checks what it reads against a descriptor: at most Size
// bytes, exactly Size before the end, and the digest at the end (unless
// verifier is nil: the destination checks it). On a mismatch it returns an
// error wrapping ErrDigestMismatch instead of io.EOF, so that a writer
// stopping at the first error never completes a write of the wrong content.
type verifyingReader struct {
	r        io.Reader
	desc     ocispec.Descriptor
	verifier digest.Verifier
	n        int64
	progress func(int64)
	// err is the first error returned other than io.EOF; done says the
	// content was read to its end and matched.
	err  error
	done bool
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.done {
		return 0, io.EOF
	}
	// Read at most one byte past Size, to tell trailing data.
	if rest := v.desc.Size - v.n + 1; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := v.r.Read(p)
	v.n += int64(n)
	if v.n > v.desc.Size {
		return 0, v.fail(fmt.Errorf("%w (trailing data)", ErrDigestMismatch))
	}
	if v.verifier != nil {
		v.verifier.Write(p[:n])
	}
	if v.progress != nil && n > 0 {
		v.progress(v.n)
	}
	switch {
	case err == io.EOF:
		if v.n != v.desc.Size {
			return n, v.fail(fmt.Errorf("%w (%d bytes, not the %d its descriptor gives)", ErrDigestMismatch, v.n, v.desc.Size))
		}
		if v.verifier != nil && !v.verifier.Verified() {
			return n, v.fail(ErrDigestMismatch)
		}
		v.done = true
		return n, io.EOF
	case err != nil:
		return n, v.fail(classify(err))
	}
	return n, nil
}

func (v *verifyingReader) fail(err error) error {
	v.err = err
	return err
}

// blobKind names the role of a blob by its media type: index, manifest,
// config, layer or blob.
func blobKind(desc ocispec.Descriptor) string {
	switch {
	case isIndex(desc.MediaType):
		return "index"
	case desc.MediaType == ocispec.MediaTypeImageManifest || desc.MediaType == mediaTypeDockerManifest:
		return "manifest"
	case isConfigType(desc.MediaType):
		return "config"
	case desc.MediaType == MediaTypeObject || strings.Contains(desc.MediaType, "layer"):
		return "layer"
	}
	return "blob"
}

// blobName names a blob for an error message: its role, digest and title.
func blobName(desc ocispec.Descriptor) string {
	s := blobKind(desc) + " " + desc.Digest.String()
	if title := desc.Annotations[ocispec.AnnotationTitle]; title != "" {
		s += " (" + title + ")"
	}
	return s
}
