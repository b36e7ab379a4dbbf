package artifact

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/oci"
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
	// HTTPClient, if set, replaces the retrying default client (tests use it
	// to bound retries).
	HTTPClient *http.Client
}

// Target is an opened reference: a registry repository, an OCI layout or a
// layout archive, as an oras-go graph target. Close it to release temporary
// files and, for an archive that was written to, to write the archive.
type Target struct {
	oras.GraphTarget
	Ref   Reference
	close func() error
}

// Close releases the target. For a written archive it replaces the archive
// file atomically; an error means the archive was left as it was.
func (t *Target) Close() error {
	if t.close == nil {
		return nil
	}
	err := t.close()
	t.close = nil
	return err
}

// Open opens the registry repository, layout or archive that ref names.
func Open(ctx context.Context, ref Reference, opts OpenOptions) (*Target, error) {
	switch ref.Transport {
	case Registry:
		repo, err := openRepository(ref, opts)
		if err != nil {
			return nil, err
		}
		return &Target{GraphTarget: repo, Ref: ref}, nil
	case Layout:
		store, err := openLayout(ctx, ref.Path, opts.Create)
		if err != nil {
			return nil, err
		}
		return &Target{GraphTarget: store, Ref: ref}, nil
	case Archive:
		return openArchive(ctx, ref, opts.Create)
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
		httpClient = retry.DefaultClient
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
func openLayout(ctx context.Context, path string, create bool) (*oci.Store, error) {
	if !create {
		if _, err := os.Stat(path + "/" + ocispec.ImageLayoutFile); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("oci:%s: no OCI layout there: %w", path, ErrNotFound)
			}
			return nil, fmt.Errorf("oci:%s: %w", path, err)
		}
	}
	store, err := oci.NewWithContext(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("oci:%s: %w", path, err)
	}
	return store, nil
}
