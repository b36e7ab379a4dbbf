package verify

import (
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

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
	// Namespace is the Kubernetes namespace on whose behalf the artifact is
	// wanted (a tenant's); empty for the node's operator and cluster-scoped
	// configs. A request with a namespace is admitted only by a governing
	// rule whose namespaces admit it, and never by the policy's default.
	Namespace string
}

// String returns NAME@DIGEST, or NAME when there is no digest.
func (s Subject) String() string {
	if s.Descriptor.Digest == "" {
		return s.Name
	}
	return s.Name + "@" + s.Descriptor.Digest.String()
}

// local reports whether s names a local object file.
func (s Subject) local() bool { return strings.HasPrefix(s.Name, "file:") }
