package csi

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors wrapped, with what they concern, by the driver; toStatus maps them
// to CSI status codes.
var (
	// ErrInvalid: the request lacks a field, names a target path outside
	// the kubelet's pod volumes, carries no pod info or an attribute that
	// is not valid (InvalidArgument).
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound: no program of the config is loaded on this node, or the
	// config has no map of that name (NotFound).
	ErrNotFound = errors.New("not found")
	// ErrDenied: the config does not admit the pod's namespace, or the map
	// may not be given to a pod (PermissionDenied).
	ErrDenied = errors.New("denied")
	// ErrConflict: the target path holds a volume published with other
	// parameters (AlreadyExists).
	ErrConflict = errors.New("published with other parameters")
	// ErrBusy: another operation on the same target path is under way
	// (Aborted; the kubelet retries).
	ErrBusy = errors.New("an operation on the target path is in progress")
	// ErrPrecondition: the target path holds something the driver did not
	// mount there (FailedPrecondition).
	ErrPrecondition = errors.New("target path not in the expected state")
	// ErrUnavailable: bpfd's programs could not be read (Unavailable).
	ErrUnavailable = errors.New("bpfd's programs unavailable")
)

// toStatus converts an error of the driver to a gRPC status error; errors
// of no known kind are Internal.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	code := codes.Internal
	for _, c := range []struct {
		err  error
		code codes.Code
	}{
		{ErrInvalid, codes.InvalidArgument},
		{ErrNotFound, codes.NotFound},
		{ErrDenied, codes.PermissionDenied},
		{ErrConflict, codes.AlreadyExists},
		{ErrBusy, codes.Aborted},
		{ErrPrecondition, codes.FailedPrecondition},
		{ErrUnavailable, codes.Unavailable},
		{context.Canceled, codes.Canceled},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
	} {
		if errors.Is(err, c.err) {
			code = c.code
			break
		}
	}
	return status.Error(code, err.Error())
}
