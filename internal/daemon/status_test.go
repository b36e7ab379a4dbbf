package daemon

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

func TestStatusCode(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("bytecode oci:/x: %w", err) }
	cases := map[string]struct {
		err  error
		want codes.Code
	}{
		"none":                 {nil, codes.OK},
		"canceled":             {wrap(context.Canceled), codes.Canceled},
		"deadline":             {wrap(context.DeadlineExceeded), codes.DeadlineExceeded},
		"denial":               {wrap(&verify.DenialError{Reason: verify.ReasonUnsigned}), codes.PermissionDenied},
		"kind not allowed":     {wrap(runtime.ErrPermission), codes.PermissionDenied},
		"tampered":             {wrap(artifact.ErrDigestMismatch), codes.PermissionDenied},
		"invalid request":      {wrap(runtime.ErrInvalid), codes.InvalidArgument},
		"invalid reference":    {wrap(artifact.ErrInvalidReference), codes.InvalidArgument},
		"registry unreachable": {wrap(fmt.Errorf("%w: dial", artifact.ErrUnreachable)), codes.Unavailable},
		"no such reference":    {wrap(artifact.ErrNotFound), codes.NotFound},
		"unknown program":      {wrap(runtime.ErrNotFound), codes.NotFound},
		"not cached":           {wrap(ErrNotCached), codes.NotFound},
		"hook taken":           {wrap(runtime.ErrConflict), codes.AlreadyExists},
		"verifier":             {wrap(runtime.ErrVerifier), codes.FailedPrecondition},
		"kernel lacks it":      {wrap(runtime.ErrUnsupported), codes.FailedPrecondition},
		"not bytecode":         {wrap(artifact.ErrUnsupported), codes.FailedPrecondition},
		"closed":               {runtime.ErrClosed, codes.Unavailable},
		"disk full":            {wrap(unix.ENOSPC), codes.ResourceExhausted},
		"anything else":        {errors.New("boom"), codes.Internal},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := statusCode(tc.err); got != tc.want {
				t.Errorf("statusCode(%v) = %v, want %v", tc.err, got, tc.want)
			}
			if tc.err == nil {
				return
			}
			st := status.Convert(toStatus(tc.err))
			if st.Code() != tc.want || st.Message() != tc.err.Error() {
				t.Errorf("toStatus = %v %q, want %v %q", st.Code(), st.Message(), tc.want, tc.err)
			}
		})
	}
}
