package artifact

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"

	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// Errors wrapped, with the identity of the thing, by this package.
var (
	// ErrInvalidReference: a reference does not parse.
	ErrInvalidReference = errors.New("invalid reference")
	// ErrNotFound: a reference, tag, manifest, blob or platform does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalidObject: a file is not a BPF object bpfd can package: not an
	// ELF, not BPF, corrupt, without programs, or clashing with another.
	ErrInvalidObject = errors.New("invalid BPF object")
	// ErrUnsupported: a manifest, config or layer is not a bytecode artifact
	// this package reads (unknown artifactType or media type, bad config).
	ErrUnsupported = errors.New("unsupported artifact")
	// ErrDigestMismatch: content does not match the digest or size its
	// descriptor gives (a tampered or truncated blob).
	ErrDigestMismatch = errors.New("content does not match its digest")
	// ErrUnreachable: the registry did not answer (down, refused, timed out).
	ErrUnreachable = errors.New("registry unreachable")
	// ErrConfigMismatch: a config, or a bpfman image's labels, says what the
	// objects do not (invented programs, another program type). Errors
	// wrapping it wrap ErrUnsupported too.
	ErrConfigMismatch = errors.New("the config disagrees with the objects")
	// ErrNotBytecode: a manifest or index of another kind of artifact (its
	// artifactType or config media type says so), as opposed to a broken
	// bytecode artifact. Errors wrapping it wrap ErrUnsupported too.
	ErrNotBytecode = errors.New("not a bytecode artifact")
	// ErrLimit: content goes over one of the bounds of Limits (a
	// *LimitError says which); it also matches ErrUnsupported.
	ErrLimit = errors.New("over a limit")
)

// classified is an error from a library, given the identity of one of this
// package's sentinels while keeping its own text.
type classified struct {
	err, kind error
}

func (c classified) Error() string   { return c.err.Error() }
func (c classified) Unwrap() []error { return []error{c.err, c.kind} }

// classify maps the errors of oras-go and the network to this package's
// sentinels: callers test with errors.Is, users read one line.
func classify(err error) error {
	var (
		opErr  *net.OpError
		dnsErr *net.DNSError
		urlErr *url.Error
		ecResp *errcode.ErrorResponse

		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrDigestMismatch), errors.Is(err, ErrUnreachable),
		errors.Is(err, ErrUnsupported), errors.Is(err, ErrInvalidObject), errors.Is(err, ErrInvalidReference),
		errors.Is(err, ErrLimit):
		return err
	case errors.Is(err, errdef.ErrNotFound):
		return classified{err, ErrNotFound}
	case errors.Is(err, errdef.ErrSizeExceedsLimit):
		return classified{err, ErrLimit}
	case errors.As(err, &syntaxErr), errors.As(err, &typeErr):
		return classified{err, ErrUnsupported}
	case errors.As(err, &ecResp) && isNotFoundCode(ecResp):
		return classified{err, ErrNotFound}
	case errors.As(err, &urlErr) && (errors.Is(urlErr.Err, io.EOF) || errors.Is(urlErr.Err, io.ErrUnexpectedEOF)):
		// The registry closed the connection before it answered: it went
		// away (a body cut short is transferBody's to report).
		return fmt.Errorf("%w: %v: connection closed before an answer", ErrUnreachable, urlErr)
	case errors.Is(err, content.ErrMismatchedDigest):
		return ErrDigestMismatch
	case errors.Is(err, content.ErrTrailingData), errors.Is(err, content.ErrInvalidDescriptorSize), errors.Is(err, io.ErrUnexpectedEOF),
		strings.HasSuffix(err.Error(), ": mismatch Content-Length"): // oras-go's registry client: a body of another size than asked for
		return fmt.Errorf("%w (%v)", ErrDigestMismatch, err)
	case errors.As(err, &opErr):
		return fmt.Errorf("%w: %v", ErrUnreachable, opErr)
	case errors.As(err, &dnsErr):
		return fmt.Errorf("%w: %v", ErrUnreachable, dnsErr)
	case errors.As(err, &urlErr) && urlErr.Timeout():
		return fmt.Errorf("%w: %v", ErrUnreachable, urlErr.Err)
	}
	return err
}

func isNotFoundCode(resp *errcode.ErrorResponse) bool {
	for _, e := range resp.Errors {
		switch e.Code {
		case errcode.ErrorCodeNameUnknown, errcode.ErrorCodeManifestUnknown, errcode.ErrorCodeBlobUnknown:
			return true
		}
	}
	return false
}
