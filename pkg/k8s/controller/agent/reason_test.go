package agent

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

func TestReasonOf(t *testing.T) {
	withInfo := func(code codes.Code, domain string, reason bpfdv1.ErrorReason) error {
		st, err := status.New(code, "denied").WithDetails(&errdetails.ErrorInfo{Domain: domain, Reason: reason.String()})
		if err != nil {
			t.Fatal(err)
		}
		return st.Err()
	}
	cases := map[string]struct {
		err  error
		want string
	}{
		"policy":                 {withInfo(codes.PermissionDenied, "bpfd.io", bpfdv1.ErrorReason_ERROR_REASON_POLICY_DENIED), v1alpha1.ReasonPolicyDenied},
		"pull, unavailable":      {withInfo(codes.Unavailable, "bpfd.io", bpfdv1.ErrorReason_ERROR_REASON_IMAGE_PULL_FAILED), v1alpha1.ReasonImagePullFailed},
		"pull, not found":        {withInfo(codes.NotFound, "bpfd.io", bpfdv1.ErrorReason_ERROR_REASON_IMAGE_PULL_FAILED), v1alpha1.ReasonImagePullFailed},
		"verifier":               {withInfo(codes.FailedPrecondition, "bpfd.io", bpfdv1.ErrorReason_ERROR_REASON_VERIFIER_REJECTED), v1alpha1.ReasonVerifierRejected},
		"attach, not found":      {withInfo(codes.NotFound, "bpfd.io", bpfdv1.ErrorReason_ERROR_REASON_ATTACH_FAILED), v1alpha1.ReasonAttachFailed},
		"invalid, not found":     {withInfo(codes.NotFound, "bpfd.io", bpfdv1.ErrorReason_ERROR_REASON_INVALID_REQUEST), v1alpha1.ReasonInvalidRequest},
		"client not allowed":     {withInfo(codes.PermissionDenied, "bpfd.io", bpfdv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED), v1alpha1.ReasonLoadFailed},
		"other domain":           {withInfo(codes.NotFound, "example.com", bpfdv1.ErrorReason_ERROR_REASON_POLICY_DENIED), v1alpha1.ReasonLoadFailed},
		"code only, policy":      {status.Error(codes.PermissionDenied, "x"), v1alpha1.ReasonPolicyDenied},
		"code only, verifier":    {status.Error(codes.FailedPrecondition, "x"), v1alpha1.ReasonVerifierRejected},
		"code only, hook taken":  {status.Error(codes.AlreadyExists, "x"), v1alpha1.ReasonAttachFailed},
		"code only, invalid":     {status.Error(codes.InvalidArgument, "x"), v1alpha1.ReasonInvalidRequest},
		"code only, not found":   {status.Error(codes.NotFound, "x"), v1alpha1.ReasonLoadFailed},
		"code only, unavailable": {status.Error(codes.Unavailable, "connection refused"), v1alpha1.ReasonDaemonUnavailable},
		"code only, internal":    {status.Error(codes.Internal, "x"), v1alpha1.ReasonLoadFailed},
		"not a status":           {errors.New("boom"), v1alpha1.ReasonDaemonUnavailable},
		"wrapped status":         {fmt.Errorf("load: %w", status.Error(codes.PermissionDenied, "x")), v1alpha1.ReasonPolicyDenied},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := reasonOf(tc.err); got != tc.want {
				t.Errorf("reasonOf(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
}

func TestMessageOf(t *testing.T) {
	if got := messageOf(status.Error(codes.PermissionDenied, "no rule admits registry.example.com/x")); got != "no rule admits registry.example.com/x" {
		t.Errorf("messageOf = %q", got)
	}
}
