package verify

import (
	"context"
	"errors"
	"fmt"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// Source is where signatures are read from: a registry repository
// (oras-go's remote.Repository), an OCI layout (oci.Store) or an opened
// layout archive. Fetch must return an error wrapping errdef.ErrNotFound for
// missing content, Resolve likewise for a missing tag, and Predecessors must
// list the referrers of a manifest (registries without the referrers API
// serve them through the "sha256-<hex>" tag, which remote.Repository reads).
type Source interface {
	content.Fetcher
	content.Resolver
	content.PredecessorFinder
}

// Destination is where Sign writes signatures: the same kinds of store as
// Source, opened for writing. Pushing an existing blob may fail with
// errdef.ErrAlreadyExists; Sign tolerates it.
type Destination interface {
	content.Storage
	content.TagResolver
}

// Subject is the artifact a signature is made or checked for.
type Subject struct {
	// Name is what trust-policy image patterns match: "host/repo" for a
	// registry, "oci:/abs/path" for a layout, "oci-archive:/abs/file" for an
	// archive and "file:/abs/path" for a local object file, which carries no
	// signatures.
	Name string
	// Descriptor is the manifest or index signed, with media type, digest
	// and size. A local file has only its Digest, if any.
	Descriptor ocispec.Descriptor
}

// String returns NAME@DIGEST, or NAME when there is no digest.
func (s Subject) String() string {
	if s.Descriptor.Digest == "" {
		return s.Name
	}
	return s.Name + "@" + s.Descriptor.Digest.String()
}

// local reports whether s names a local object file.
func (s Subject) local() bool {
	return len(s.Name) >= 5 && s.Name[:5] == "file:"
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
	if err != nil {
		return nil, &contentError{desc: desc, err: err}
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
