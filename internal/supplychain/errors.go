package supplychain

import (
	"context"
	"errors"

	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// Errors wrapped, with the identity of the thing, by this package.
var (
	// ErrNotCached: the pull policy is Never and the cache lacks the
	// artifact (or the tag was never pulled).
	ErrNotCached = errors.New("not in the cache and the pull policy is Never")
	// ErrInvalid: a pull policy that is not one of the three.
	ErrInvalid = errors.New("invalid")
	// ErrNoEvidence: the cache holds no signatures of an artifact from
	// the origin asked about (Rejudge): it was never fetched from there, or
	// the cache was emptied or written by an earlier bpfd.
	ErrNoEvidence = errors.New("no signatures from that origin in the cache")
)

// PullError reports a failure to resolve, pull or read an artifact, as
// opposed to the trust policy's verdict: the registry or layout is
// unreachable or lacks the reference (artifact.ErrUnreachable,
// artifact.ErrNotFound), the cache lacks it under PullNever (ErrNotCached),
// the reference is malformed (artifact.ErrInvalidReference), the artifact
// is not bytecode for this host (artifact.ErrUnsupported), or its content
// does not match its digest (artifact.ErrDigestMismatch). Match the cause
// with errors.Is.
type PullError struct {
	// Reference is the reference as requested.
	Reference string
	Err       error
}

func (e *PullError) Error() string { return e.Err.Error() }
func (e *PullError) Unwrap() error { return e.Err }

// pullError marks err as a PullError unless it is the policy's verdict or
// the request's context ending.
func pullError(ref string, err error) error {
	var denial *verify.DenialError
	if err == nil || errors.As(err, &denial) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &PullError{Reference: ref, Err: err}
}
