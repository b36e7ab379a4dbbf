package artifact

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// OpenOptions configures Open. The zero value reads from a layout, archive or
// registry with the user's Docker credentials, over HTTPS except for loopback
// registries.
type OpenOptions struct {
	// Create makes Open create a missing layout or archive, for writing.
	// Without it a missing one is ErrNotFound.
	Create bool
	// PlainHTTP talks HTTP instead of HTTPS to the registry. Loopback
	// registries always use plain HTTP.
	PlainHTTP bool
	// CredentialsFile is a Docker config.json with registry credentials and
	// credential helpers; empty means the user's (~/.docker/config.json).
	CredentialsFile string
	// HTTPClient, if set, replaces the default client, which retries a
	// failed request twice and gives up on a registry that does not accept
	// a connection within 5 s or answer within 15 s (see DefaultHTTPClient).
	HTTPClient *http.Client
	// Limits bound what opening reads: an archive's extraction
	// (ArchiveSize, ArchiveEntries), a layout's index.json and the
	// manifests it leads to (ManifestSize, Blobs), a registry's listings
	// (ManifestSize). The zero value is the defaults.
	Limits Limits
}

// DefaultHTTPClient returns the HTTP client Open uses for registries:
// NewHTTPClient with the default options.
func DefaultHTTPClient() *http.Client { return NewHTTPClient(HTTPClientOptions{}) }

// HTTPClientOptions configure NewHTTPClient. The zero value gives the
// defaults.
type HTTPClientOptions struct {
	// StallTimeout is how long a response body may go without a byte
	// before the transfer fails with ErrUnreachable; 0 is
	// DefaultStallTimeout.
	StallTimeout time.Duration
	// TLSConfig, if set, configures TLS to registries (a CA bundle, or
	// InsecureSkipVerify); nil uses the system's roots.
	TLSConfig *tls.Config
}

// NewHTTPClient returns an HTTP client for registries with bounded dial,
// TLS and response timeouts, at most two retries with backoff for
// timeouts, resets and 5xx/429 answers, and a bound on the time a response
// body may stall, so that a registry that is down or stops answering fails
// in seconds rather than hanging. A transfer the network cuts short fails
// with ErrUnreachable, not as content that does not match its digest.
func NewHTTPClient(opts HTTPClientOptions) *http.Client {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	base.TLSHandshakeTimeout = 10 * time.Second
	if opts.TLSConfig != nil {
		base.TLSClientConfig = opts.TLSConfig
	}
	base.ResponseHeaderTimeout = 15 * time.Second
	transport := retry.NewTransport(base)
	transport.Policy = func() retry.Policy {
		return &retry.GenericPolicy{
			Retryable: retry.DefaultPredicate,
			Backoff:   retry.DefaultBackoff,
			MinWait:   200 * time.Millisecond,
			MaxWait:   2 * time.Second,
			MaxRetry:  2,
		}
	}
	stall := opts.StallTimeout
	if stall <= 0 {
		stall = DefaultStallTimeout
	}
	return &http.Client{Transport: &transferTransport{base: transport, stall: stall}}
}

// Target is an opened reference: a registry repository, an OCI layout or a
// layout archive, as an oras-go graph target. Close it to release temporary
// files and, for an archive that was written to, to write the archive.
type Target struct {
	oras.GraphTarget
	Ref     Reference
	close   func() error
	discard func()
}

var _ registry.ReferrerLister = (*Target)(nil)

// Close releases the target. For a written archive it replaces the archive
// file atomically; an error means the archive was left as it was.
func (t *Target) Close() error {
	t.discard = nil
	if t.close == nil {
		return nil
	}
	err := t.close()
	t.close = nil
	return err
}

// Discard releases the target after a failed write, leaving things as they
// were before Open where it can: an archive is not written, and a layout that
// Open created is removed. Blobs already pushed to a registry or an existing
// layout stay, unreferenced; no tag was moved unless the caller moved it.
// Close after Discard does nothing.
func (t *Target) Discard() {
	if t.discard != nil {
		t.discard()
	}
	t.discard, t.close = nil, nil
}

// ResolveReference resolves the tag or digest t.Ref selects, with an error
// naming the reference: ErrNotFound when there is no such tag or manifest.
func (t *Target) ResolveReference(ctx context.Context) (ocispec.Descriptor, error) {
	desc, err := t.Resolve(ctx, t.Ref.Selector())
	if err != nil {
		if err = classify(err); errors.Is(err, ErrNotFound) {
			err = ErrNotFound // the library's text repeats the reference
		}
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w", t.Ref, err)
	}
	return desc, nil
}

// Referrers lists the manifests whose subject is desc: through the registry's
// referrers API or its tag schema fallback, or from a layout's graph.
func (t *Target) Referrers(ctx context.Context, desc ocispec.Descriptor, artifactType string, fn func([]ocispec.Descriptor) error) error {
	if rl, ok := t.GraphTarget.(registry.ReferrerLister); ok {
		return rl.Referrers(ctx, desc, artifactType, fn)
	}
	referrers, err := registry.Referrers(ctx, t.GraphTarget, desc, artifactType)
	if err != nil {
		return err
	}
	return fn(referrers)
}

// Open opens the registry repository, layout or archive that ref names.
func Open(ctx context.Context, ref Reference, opts OpenOptions) (*Target, error) {
	switch ref.Transport {
	case Registry:
		repo, err := openRepository(ref, opts)
		if err != nil {
			return nil, err
		}
		return &Target{GraphTarget: &repository{repo}, Ref: ref}, nil
	case Layout:
		_, statErr := os.Stat(ref.Path)
		store, err := openLayout(ctx, ref.Path, opts.Create, opts.Limits)
		if err != nil {
			return nil, err
		}
		t := &Target{GraphTarget: store, Ref: ref}
		t.close = func() error {
			if store.wasWritten() {
				store.tidy()
			}
			return nil
		}
		if errors.Is(statErr, fs.ErrNotExist) {
			t.discard = func() { os.RemoveAll(ref.Path) }
		} else {
			t.discard = store.undo
		}
		return t, nil
	case Archive:
		return openArchive(ctx, ref, opts.Create, opts.Limits)
	default:
		return nil, fmt.Errorf("%s: %s references hold no OCI artifact: %w", ref, ref.Transport, ErrInvalidReference)
	}
}

func openRepository(ref Reference, opts OpenOptions) (*remote.Repository, error) {
	repo, err := remote.NewRepository(ref.Registry + "/" + ref.Repository)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	repo.PlainHTTP = opts.PlainHTTP || ref.IsLoopback()
	repo.MaxMetadataBytes = opts.Limits.WithDefaults().ManifestSize
	repo.ReferrerListMaxPages = maxReferrerPages
	repo.TagListMaxPages = maxTagPages
	var store credentials.Store
	if opts.CredentialsFile != "" {
		store, err = credentials.NewStore(opts.CredentialsFile, credentials.StoreOptions{})
	} else {
		store, err = credentials.NewStoreFromDocker(credentials.StoreOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("registry credentials: %w", err)
	}
	httpClient := opts.HTTPClient
	if httpClient == nil {
		httpClient = DefaultHTTPClient()
	}
	repo.Client = &auth.Client{
		Client:     httpClient,
		Cache:      auth.NewCache(),
		Credential: credentials.Credential(store),
		Header:     http.Header{"User-Agent": {"bpfd"}},
	}
	return repo, nil
}

// openLayout opens the OCI layout at path; with create it makes a missing one.
func openLayout(ctx context.Context, path string, create bool, limits Limits) (*layoutStore, error) {
	if !create {
		if _, err := os.Stat(path + "/" + ocispec.ImageLayoutFile); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("oci:%s: no OCI layout there: %w", path, ErrNotFound)
			}
			return nil, fmt.Errorf("oci:%s: %w", path, err)
		}
	}
	store, err := openLayoutStore(ctx, path, limits)
	if err != nil {
		return nil, fmt.Errorf("oci:%s: %w", path, err)
	}
	return store, nil
}

// The bounds on a registry's paginated listings: pages of at most
// Limits.ManifestSize each.
const (
	maxReferrerPages = 64
	maxTagPages      = 1024
)

// repository is a registry repository that, like oras and notation, takes a
// push or tag that indexed a referrer under the tag schema for done when the
// registry then refuses to delete the index it replaced: distribution's
// registry refuses deletes by default, and the referrer and the new index
// are in place. The old index stays, untagged, for the registry's garbage
// collection.
type repository struct {
	*remote.Repository
}

func (r *repository) Push(ctx context.Context, expected ocispec.Descriptor, content io.Reader) error {
	return tolerateReferrersIndexDelete(r.Repository.Push(ctx, expected, content))
}

func (r *repository) PushReference(ctx context.Context, expected ocispec.Descriptor, content io.Reader, reference string) error {
	return tolerateReferrersIndexDelete(r.Repository.PushReference(ctx, expected, content, reference))
}

func (r *repository) Tag(ctx context.Context, desc ocispec.Descriptor, reference string) error {
	return tolerateReferrersIndexDelete(r.Repository.Tag(ctx, desc, reference))
}
