package daemon

import (
	"context"
	"errors"

	"golang.org/x/sys/unix"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bpfd-dev/bpfd/internal/supplychain"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
	"github.com/bpfd-dev/bpfd/pkg/verify"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// This file is the one place errors become gRPC statuses: a code, the
// error's message, and a google.rpc.ErrorInfo detail (domain bpfd.io) whose
// reason is an ErrorReason name. The order of the cases matters: a policy
// denial is tested before anything it may wrap, and an unreachable registry
// before a missing reference.

// errorDomain is the ErrorInfo domain of bpfd's errors.
const errorDomain = "bpfd.io"

// statusCode returns the gRPC code for err.
func statusCode(err error) codes.Code {
	var denial *verify.DenialError
	switch {
	case err == nil:
		return codes.OK
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.As(err, &denial), errors.Is(err, runtime.ErrPermission), errors.Is(err, ErrPermissionDenied):
		return codes.PermissionDenied
	case errors.Is(err, artifact.ErrDigestMismatch):
		// Content that does not match the digest that was resolved and
		// signed: tampered with, refused like a denial.
		return codes.PermissionDenied
	case errors.Is(err, runtime.ErrInvalid), errors.Is(err, artifact.ErrInvalidReference), errors.Is(err, supplychain.ErrInvalid):
		return codes.InvalidArgument
	case errors.Is(err, artifact.ErrUnreachable):
		return codes.Unavailable
	case errors.Is(err, runtime.ErrNotFound), errors.Is(err, artifact.ErrNotFound), errors.Is(err, supplychain.ErrNotCached):
		return codes.NotFound
	case errors.Is(err, runtime.ErrConflict):
		return codes.AlreadyExists
	case errors.Is(err, runtime.ErrVerifier), errors.Is(err, runtime.ErrUnsupported),
		errors.Is(err, artifact.ErrUnsupported), errors.Is(err, artifact.ErrInvalidObject):
		return codes.FailedPrecondition
	case errors.Is(err, runtime.ErrClosed), errors.Is(err, ErrNotJudged):
		return codes.Unavailable
	case errors.Is(err, unix.ENOSPC), errors.Is(err, unix.EDQUOT):
		return codes.ResourceExhausted
	}
	return codes.Internal
}

// reasonOf classifies err for clients that act on the kind of failure.
func reasonOf(err error) pb.ErrorReason {
	var (
		denial *verify.DenialError
		pull   *supplychain.PullError
	)
	switch {
	case errors.Is(err, ErrPermissionDenied):
		return pb.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED
	case errors.As(err, &denial), errors.Is(err, runtime.ErrPermission), errors.Is(err, artifact.ErrDigestMismatch):
		return pb.ErrorReason_ERROR_REASON_POLICY_DENIED
	case errors.Is(err, runtime.ErrInvalid), errors.Is(err, artifact.ErrInvalidReference), errors.Is(err, supplychain.ErrInvalid):
		return pb.ErrorReason_ERROR_REASON_INVALID_REQUEST
	case errors.As(err, &pull):
		return pb.ErrorReason_ERROR_REASON_IMAGE_PULL_FAILED
	case errors.Is(err, runtime.ErrVerifier), errors.Is(err, runtime.ErrUnsupported):
		return pb.ErrorReason_ERROR_REASON_VERIFIER_REJECTED
	case errors.Is(err, runtime.ErrConflict):
		return pb.ErrorReason_ERROR_REASON_ATTACH_FAILED
	case errors.Is(err, runtime.ErrProgramNotFound), errors.Is(err, runtime.ErrMapNotFound):
		// What the request names: an unknown program id, map owner,
		// program name, map or key.
		return pb.ErrorReason_ERROR_REASON_INVALID_REQUEST
	case errors.Is(err, runtime.ErrHookNotFound):
		return pb.ErrorReason_ERROR_REASON_ATTACH_FAILED
	}
	return pb.ErrorReason_ERROR_REASON_UNSPECIFIED
}

// toStatus converts err into a gRPC status error carrying its message (a
// policy denial's own, which names the artifact and digest) and reason.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	msg := err.Error()
	var denial *verify.DenialError
	if errors.As(err, &denial) {
		msg = denial.Error() // it names the artifact; the wrapping repeats it
	}
	st := status.New(statusCode(err), msg)
	if detailed, derr := st.WithDetails(&errdetails.ErrorInfo{Domain: errorDomain, Reason: reasonOf(err).String()}); derr == nil {
		st = detailed
	}
	return st.Err()
}
