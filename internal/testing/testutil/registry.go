package testutil

import (
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/localregistry"
)

// Registry is a real OCI registry (distribution's registry binary) serving on
// a loopback port, with its storage in a temporary directory.
type Registry = localregistry.Registry

// RegistryOption configures StartRegistry.
type RegistryOption func(*localregistry.Options)

// WithBasicAuth makes the registry demand HTTP basic authentication as user
// with password (an htpasswd file with a bcrypt hash).
func WithBasicAuth(user, password string) RegistryOption {
	return func(o *localregistry.Options) {
		o.BasicAuth = &localregistry.Credentials{User: user, Password: password}
	}
}

// WithDeletes makes the registry accept deletes of manifests and blobs,
// which distribution's registry, like many production ones, refuses by
// default.
func WithDeletes() RegistryOption {
	return func(o *localregistry.Options) { o.DeleteEnabled = true }
}

// StartRegistry starts distribution's registry (`registry`, found by Tool)
// for the test, with distribution's defaults (deletes refused) unless opts
// say otherwise, and stops it at cleanup. It fails the test
// when the binary is missing: `make tools` builds it.
func StartRegistry(tb testing.TB, opts ...RegistryOption) *Registry {
	tb.Helper()
	bin := Tool(tb, "registry")
	var o localregistry.Options
	for _, opt := range opts {
		opt(&o)
	}
	r, err := localregistry.Start(bin, tb.TempDir(), o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Stop)
	return r
}
