package daemon

import (
	"context"
	"errors"
	"fmt"
	"testing"

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

// statusReason returns the reason of err's bpfd.io ErrorInfo detail.
func statusReason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == errorDomain {
			return info.GetReason()
		}
	}
	return ""
}

func TestStatusCode(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("bytecode oci:/x: %w", err) }
	pull := func(err error) error { return wrap(&supplychain.PullError{Reference: "oci:/x", Err: err}) }
	cases := map[string]struct {
		err    error
		want   codes.Code
		reason pb.ErrorReason
	}{
		"none":                      {nil, codes.OK, 0},
		"canceled":                  {wrap(context.Canceled), codes.Canceled, 0},
		"deadline":                  {wrap(context.DeadlineExceeded), codes.DeadlineExceeded, 0},
		"denial":                    {pull(&verify.DenialError{Subject: "oci:/x@sha256:1", Reason: verify.ReasonUnsigned, Detail: "no signatures"}), codes.PermissionDenied, pb.ErrorReason_ERROR_REASON_POLICY_DENIED},
		"kind not allowed":          {wrap(runtime.ErrPermission), codes.PermissionDenied, pb.ErrorReason_ERROR_REASON_POLICY_DENIED},
		"tampered":                  {pull(artifact.ErrDigestMismatch), codes.PermissionDenied, pb.ErrorReason_ERROR_REASON_POLICY_DENIED},
		"invalid request":           {wrap(runtime.ErrInvalid), codes.InvalidArgument, pb.ErrorReason_ERROR_REASON_INVALID_REQUEST},
		"invalid reference":         {pull(artifact.ErrInvalidReference), codes.InvalidArgument, pb.ErrorReason_ERROR_REASON_INVALID_REQUEST},
		"registry unreachable":      {pull(fmt.Errorf("%w: dial", artifact.ErrUnreachable)), codes.Unavailable, pb.ErrorReason_ERROR_REASON_IMAGE_PULL_FAILED},
		"no such reference":         {pull(artifact.ErrNotFound), codes.NotFound, pb.ErrorReason_ERROR_REASON_IMAGE_PULL_FAILED},
		"unknown program":           {fmt.Errorf("program nope: not in x.bpf.o (programs: x): %w", runtime.ErrProgramNotFound), codes.NotFound, pb.ErrorReason_ERROR_REASON_INVALID_REQUEST},
		"not cached":                {pull(supplychain.ErrNotCached), codes.NotFound, pb.ErrorReason_ERROR_REASON_IMAGE_PULL_FAILED},
		"bad pull policy":           {pull(supplychain.ErrInvalid), codes.InvalidArgument, pb.ErrorReason_ERROR_REASON_INVALID_REQUEST},
		"hook taken":                {wrap(runtime.ErrConflict), codes.AlreadyExists, pb.ErrorReason_ERROR_REASON_ATTACH_FAILED},
		"verifier":                  {wrap(runtime.ErrVerifier), codes.FailedPrecondition, pb.ErrorReason_ERROR_REASON_VERIFIER_REJECTED},
		"kernel lacks it":           {wrap(runtime.ErrUnsupported), codes.FailedPrecondition, pb.ErrorReason_ERROR_REASON_VERIFIER_REJECTED},
		"not bytecode":              {pull(artifact.ErrUnsupported), codes.FailedPrecondition, pb.ErrorReason_ERROR_REASON_IMAGE_PULL_FAILED},
		"closed":                    {runtime.ErrClosed, codes.Unavailable, 0},
		"disk full":                 {wrap(unix.ENOSPC), codes.ResourceExhausted, 0},
		"missing hook":              {fmt.Errorf("program x: interface eth9: %w", runtime.ErrHookNotFound), codes.NotFound, pb.ErrorReason_ERROR_REASON_ATTACH_FAILED},
		"hook named like a program": {fmt.Errorf("program 42: cgroup /x: %w", runtime.ErrHookNotFound), codes.NotFound, pb.ErrorReason_ERROR_REASON_ATTACH_FAILED},
		"unknown id":                {fmt.Errorf("program 42: %w", runtime.ErrProgramNotFound), codes.NotFound, pb.ErrorReason_ERROR_REASON_INVALID_REQUEST},
		"unknown map owner":         {fmt.Errorf("map owner 42: program %w", runtime.ErrProgramNotFound), codes.NotFound, pb.ErrorReason_ERROR_REASON_INVALID_REQUEST},
		"not found, unclassified":   {fmt.Errorf("x: %w", runtime.ErrNotFound), codes.NotFound, 0},
		"client not allowed":        {fmt.Errorf("uid 7 gid 7: %w to use bpfd", ErrPermissionDenied), codes.PermissionDenied, pb.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED},
		"not the owner":             {&NotOwnerError{ID: 3, OwnerUID: 1000, ClientUID: 1001, Action: "unload"}, codes.PermissionDenied, pb.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED},
		"not the map owner's":       {fmt.Errorf("map owner: %w", &NotOwnerError{ID: 3, OwnerUID: 1000, ClientUID: 1001, Action: "use the maps of"}), codes.PermissionDenied, pb.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED},
		"panicked":                  {fmt.Errorf("List: %w", errPanicked), codes.Internal, 0},
		"anything else":             {errors.New("boom"), codes.Internal, 0},
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
			want := tc.err.Error()
			var denial *verify.DenialError
			if errors.As(tc.err, &denial) {
				want = denial.Error()
			}
			if st.Code() != tc.want || st.Message() != want {
				t.Errorf("toStatus = %v %q, want %v %q", st.Code(), st.Message(), tc.want, want)
			}
			if got := statusReason(st.Err()); got != tc.reason.String() {
				t.Errorf("reason %s, want %s", got, tc.reason)
			}
		})
	}
}
