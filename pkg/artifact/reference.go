package artifact

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

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
//	file:PATH[@digest]                File: a local ELF object (bpfd only),
//	                                  whose content must match the digest
//
// Anything else of the form "word:..." that is not host:port/... is refused
// as an unknown transport, and a registry host must be a host name, an IPv4
// address or a bracketed IPv6 address, with a port from 1 to 65535: a typo
// never reaches the network. References with unprintable characters are
// refused.
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
	if err := checkPrintable(s); err != nil {
		return Reference{}, err
	}
	for _, t := range []Transport{Archive, Layout, File} {
		if rest, ok := strings.CutPrefix(s, string(t)+":"); ok {
			return parsePathReference(t, rest)
		}
	}
	if err := checkScheme(s); err != nil {
		return Reference{}, err
	}
	return parseRegistryReference(s)
}

// checkPrintable refuses a reference with control characters or other runes
// that do not print (bidirectional overrides, zero-width spaces), or that is
// not UTF-8: what a terminal would show is then not what would be fetched.
func checkPrintable(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("not valid UTF-8: %w", ErrInvalidReference)
	}
	for i, r := range s {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("unprintable character %U at byte %d: %w", r, i, ErrInvalidReference)
		}
	}
	return nil
}

// knownTransports are the "scheme:" prefixes ParseReference reads.
var knownTransports = []Transport{Layout, Archive, File}

// checkScheme refuses "word:..." where word is no known transport and
// cannot be a registry host with a port ("ocl:/tmp/x", "OCI:/tmp/x",
// "oci-archve:f"), rather than let it go to the network as a host name.
func checkScheme(s string) error {
	prefix, rest, ok := strings.Cut(s, ":")
	if !ok || !isSchemeLike(prefix) || strings.EqualFold(prefix, "localhost") {
		return nil
	}
	if port, _, slash := strings.Cut(rest, "/"); slash && port != "" && strings.Trim(port, "0123456789") == "" {
		return nil // host:port/repo on a one-label host
	}
	var known []string
	for _, t := range knownTransports {
		known = append(known, string(t)+":")
	}
	msg := fmt.Sprintf("%q is not a transport (%s) and %q not a registry host[:port]/repository", prefix+":", strings.Join(known, ", "), prefix)
	for _, t := range knownTransports {
		if strings.EqualFold(prefix, string(t)) || editDistance(strings.ToLower(prefix), string(t)) <= 2 {
			msg += fmt.Sprintf("; did you mean %q?", string(t)+":")
			break
		}
	}
	return fmt.Errorf("%s: %w", msg, ErrInvalidReference)
}

// isSchemeLike reports whether s reads as a URI scheme without dots: a
// letter, then letters, digits, '+' or '-'.
func isSchemeLike(s string) bool {
	if s == "" || !isASCIILetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isASCIILetter(c) && (c < '0' || c > '9') && c != '+' && c != '-' {
			return false
		}
	}
	return true
}

func isASCIILetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func parsePathReference(t Transport, rest string) (Reference, error) {
	ref := Reference{Transport: t}
	path := rest
	if t == File {
		// file:PATH@sha256:<hex>: an '@' followed by "algorithm:" ends
		// the path.
		if i := strings.LastIndex(rest, "@"); i >= 0 && strings.Contains(rest[i+1:], ":") {
			ref.Digest = digest.Digest(rest[i+1:])
			if err := ref.Digest.Validate(); err != nil {
				return Reference{}, fmt.Errorf("digest %q: %v: %w", ref.Digest, err, ErrInvalidReference)
			}
			path = rest[:i]
		}
	} else {
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
	host, _, ok := strings.Cut(s, "/")
	if !ok {
		return Reference{}, fmt.Errorf("not a registry reference (host[:port]/repo[:tag][@digest]), oci:PATH or oci-archive:FILE: %w", ErrInvalidReference)
	}
	if err := checkHost(host); err != nil {
		return Reference{}, fmt.Errorf("registry %q: %v: %w", host, err, ErrInvalidReference)
	}
	// oras-go drops a tag that comes with a digest; keep both.
	name, tag, dgst, err := splitTagDigest(s)
	if err != nil {
		return Reference{}, err
	}
	r, err := registry.ParseReference(name)
	if err != nil || r.Registry != host {
		return Reference{}, fmt.Errorf("not a registry reference (host[:port]/repo[:tag][@digest]), oci:PATH or oci-archive:FILE: %w", ErrInvalidReference)
	}
	if !strings.ContainsAny(r.Registry, ".:") && !strings.EqualFold(r.Registry, "localhost") {
		return Reference{}, fmt.Errorf("registry %q is not a host name (host[:port]/repo): %w", r.Registry, ErrInvalidReference)
	}
	return Reference{Transport: Registry, Registry: r.Registry, Repository: r.Repository, Tag: tag, Digest: dgst}, nil
}

// checkHost checks that hostport is host[:port]: a DNS name, an IPv4
// address or a bracketed IPv6 address, and a port from 1 to 65535.
func checkHost(hostport string) error {
	host, port := hostport, ""
	if rest, ok := strings.CutPrefix(hostport, "["); ok {
		h, after, ok := strings.Cut(rest, "]")
		if !ok {
			return errors.New("no ']' after an IPv6 address")
		}
		addr, err := netip.ParseAddr(h)
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return fmt.Errorf("%q is not an IPv6 address", h)
		}
		if after != "" {
			var found bool
			if port, found = strings.CutPrefix(after, ":"); !found {
				return fmt.Errorf("%q after the address", after)
			}
			return checkPort(port)
		}
		return nil
	}
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		host, port = hostport[:i], hostport[i+1:]
		if err := checkPort(port); err != nil {
			return err
		}
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if !addr.Is4() {
			return errors.New("an IPv6 address must be in brackets")
		}
		return nil
	}
	return checkDNSName(host)
}

func checkPort(port string) error {
	if port == "" {
		return errors.New("empty port")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || strings.Trim(port, "0123456789") != "" || len(port) > 5 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}

// checkDNSName checks a host name: labels of letters, digits and inner
// hyphens, 1 to 63 each, 253 in all, the last not all digits (which
// resolvers would read as an IPv4 address in another notation, as
// "127.1").
func checkDNSName(name string) error {
	if name == "" {
		return errors.New("empty host")
	}
	if len(name) > 253 {
		return errors.New("host name longer than 253 characters")
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("%q is not a host name", name)
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !isASCIILetter(c) && (c < '0' || c > '9') && c != '-' {
				return fmt.Errorf("%q is not a host name", name)
			}
		}
	}
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" {
		return fmt.Errorf("%q is neither an IPv4 address nor a host name", name)
	}
	return nil
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
// reach over plain HTTP by default: "localhost", or an IP address in
// 127.0.0.0/8 or ::1. A host name that merely starts with "127." is not.
func (r Reference) IsLoopback() bool {
	if r.Transport != Registry {
		return false
	}
	host := r.Registry
	if h, _, ok := strings.Cut(strings.TrimPrefix(host, "["), "]"); ok && strings.HasPrefix(host, "[") {
		host = h
	} else if i := strings.LastIndex(host, ":"); i >= 0 {
		host = host[:i]
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.Unmap().IsLoopback()
}
