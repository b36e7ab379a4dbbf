package daemon

import (
	"context"
	"errors"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// This file is the one place errors become gRPC status codes. The order of
// the cases matters: a policy denial is tested before anything it may wrap,
// and an unreachable registry before a missing reference.

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
	case errors.As(err, &denial), errors.Is(err, runtime.ErrPermission):
		return codes.PermissionDenied
	case errors.Is(err, artifact.ErrDigestMismatch):
		// Content that does not match the digest that was resolved and
		// signed: tampered with, refused like a denial.
		return codes.PermissionDenied
	case errors.Is(err, runtime.ErrInvalid), errors.Is(err, artifact.ErrInvalidReference):
		return codes.InvalidArgument
	case errors.Is(err, artifact.ErrUnreachable):
		return codes.Unavailable
	case errors.Is(err, runtime.ErrNotFound), errors.Is(err, artifact.ErrNotFound), errors.Is(err, ErrNotCached):
		return codes.NotFound
	case errors.Is(err, runtime.ErrConflict):
		return codes.AlreadyExists
	case errors.Is(err, runtime.ErrVerifier), errors.Is(err, runtime.ErrUnsupported),
		errors.Is(err, artifact.ErrUnsupported), errors.Is(err, artifact.ErrInvalidObject):
		return codes.FailedPrecondition
	case errors.Is(err, runtime.ErrClosed):
		return codes.Unavailable
	case errors.Is(err, unix.ENOSPC), errors.Is(err, unix.EDQUOT):
		return codes.ResourceExhausted
	}
	return codes.Internal
}

// toStatus converts err into a gRPC status error carrying its message.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(statusCode(err), err.Error())
}
