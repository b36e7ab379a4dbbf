package artifact

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/registry"
)

// Transport says where a Reference lives.
type Transport string

// The transports bpfd understands. Each has its own reference syntax:
//
//	host[:port]/repo[:tag][@digest]   Registry
//	oci:PATH[:tag][@digest]           Layout: an OCI image layout directory
//	oci-archive:FILE[:tag][@digest]   Archive: a tar of an OCI image layout
//	file:PATH                         File: a local ELF object (bpfd only)
const (
	Registry Transport = "registry"
	Layout   Transport = "oci"
	Archive  Transport = "oci-archive"
	File     Transport = "file"
)

// DefaultTag is the tag a layout or archive reference names when it gives
// neither a tag nor a digest.
const DefaultTag = "latest"

// Reference names an artifact in a registry, an OCI layout, a layout archive
// or, for bpfd's local loads, an ELF file.
type Reference struct {
	Transport Transport
	// Registry is host[:port]; Registry transport only.
	Registry string
	// Repository is the repository within Registry; Registry transport only.
	Repository string
	// Path is the absolute path of the layout, archive or file.
	Path string
	// Tag and Digest select the manifest; a digest wins over a tag.
	Tag    string
	Digest digest.Digest
}

// ParseReference parses s in any of the forms listed at Transport. Relative
// paths are made absolute.
func ParseReference(s string) (Reference, error) {
	ref, err := parseReference(s)
	if err != nil {
		return Reference{}, fmt.Errorf("reference %q: %w", s, err)
	}
	return ref, nil
}

func parseReference(s string) (Reference, error) {
	if s == "" {
		return Reference{}, fmt.Errorf("empty reference: %w", ErrInvalidReference)
	}
	for _, t := range []Transport{Archive, Layout, File} {
		if rest, ok := strings.CutPrefix(s, string(t)+":"); ok {
			return parsePathReference(t, rest)
		}
	}
	return parseRegistryReference(s)
}

func parsePathReference(t Transport, rest string) (Reference, error) {
	ref := Reference{Transport: t}
	path := rest
	if t != File {
		var err error
		if path, ref.Tag, ref.Digest, err = splitTagDigest(rest); err != nil {
			return Reference{}, err
		}
	}
	if path == "" {
		return Reference{}, fmt.Errorf("missing path after %q: %w", t+":", ErrInvalidReference)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Reference{}, fmt.Errorf("path %s: %w", path, err)
	}
	// "oci:/x/y:v1/." is the directory y:v1, which String would write as
	// "oci:/x/y:v1", the directory y tagged v1.
	if t != File && strings.Contains(filepath.Base(abs), ":") {
		return Reference{}, fmt.Errorf("path %s: its last element has a colon, which would read as a tag: %w", abs, ErrInvalidReference)
	}
	ref.Path = abs
	return ref, nil
}

// splitTagDigest splits "PATH[:tag][@digest]"; a tag is a colon after the
// last slash, so paths with colons in directory names still work.
func splitTagDigest(s string) (path, tag string, dgst digest.Digest, err error) {
	path = s
	if i := strings.LastIndex(path, "@"); i >= 0 {
		dgst = digest.Digest(path[i+1:])
		if err := dgst.Validate(); err != nil {
			return "", "", "", fmt.Errorf("digest %q: %v: %w", dgst, err, ErrInvalidReference)
		}
		path = path[:i]
	}
	if i := strings.LastIndex(path, ":"); i > strings.LastIndex(path, "/") {
		tag = path[i+1:]
		path = path[:i]
		if err := (registry.Reference{Registry: "x", Repository: "x", Reference: tag}).ValidateReferenceAsTag(); err != nil {
			return "", "", "", fmt.Errorf("tag %q: %w", tag, ErrInvalidReference)
		}
	}
	return path, tag, dgst, nil
}

func parseRegistryReference(s string) (Reference, error) {
	// oras-go drops a tag that comes with a digest; keep both.
	name, tag, dgst, err := splitTagDigest(s)
	if err != nil {
		return Reference{}, err
	}
	r, err := registry.ParseReference(name)
	if err != nil {
		return Reference{}, fmt.Errorf("not a registry reference (host[:port]/repo[:tag][@digest]), oci:PATH or oci-archive:FILE: %w", ErrInvalidReference)
	}
	if !strings.ContainsAny(r.Registry, ".:") && r.Registry != "localhost" {
		return Reference{}, fmt.Errorf("registry %q is not a host name (host[:port]/repo): %w", r.Registry, ErrInvalidReference)
	}
	return Reference{Transport: Registry, Registry: r.Registry, Repository: r.Repository, Tag: tag, Digest: dgst}, nil
}

// Name returns the reference without tag or digest: "host/repo" for a
// registry, "oci:/abs/path" for a layout, and so on. Trust policies match
// their image patterns against it.
func (r Reference) Name() string {
	if r.Transport == Registry {
		return r.Registry + "/" + r.Repository
	}
	return string(r.Transport) + ":" + r.Path
}

// String returns the reference in the syntax ParseReference reads.
func (r Reference) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// Selector returns what to resolve within the target: the digest if there is
// one, else the tag, else DefaultTag.
func (r Reference) Selector() string {
	switch {
	case r.Digest != "":
		return r.Digest.String()
	case r.Tag != "":
		return r.Tag
	default:
		return DefaultTag
	}
}

// WithDigest returns r pinned to d; the tag is kept for display.
func (r Reference) WithDigest(d digest.Digest) Reference {
	r.Digest = d
	return r
}

// IsLoopback reports whether r names a registry on this host, which OCI tools
// reach over plain HTTP by default.
func (r Reference) IsLoopback() bool {
	host := r.Registry
	if h, _, ok := strings.Cut(strings.TrimPrefix(host, "["), "]"); ok && strings.HasPrefix(host, "[") {
		host = h
	} else if i := strings.LastIndex(host, ":"); i >= 0 {
		host = host[:i]
	}
	return host == "localhost" || host == "::1" || strings.HasPrefix(host, "127.")
}
