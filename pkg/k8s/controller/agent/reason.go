package agent

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// errorDomain is the ErrorInfo domain of bpfd's errors.
const errorDomain = "bpfd.io"

// reasonOf maps an error of a call to bpfd to a BpfProgram Ready reason. It
// trusts the google.rpc.ErrorInfo detail bpfd attaches and falls back to the
// status code; an error that is no gRPC status (or Unavailable without
// detail, which is what a missing socket gives) means bpfd did not answer.
func reasonOf(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return v1alpha1.ReasonDaemonUnavailable
	}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.GetDomain() != errorDomain {
			continue
		}
		switch bpfdv1.ErrorReason(bpfdv1.ErrorReason_value[info.GetReason()]) {
		case bpfdv1.ErrorReason_ERROR_REASON_POLICY_DENIED:
			return v1alpha1.ReasonPolicyDenied
		case bpfdv1.ErrorReason_ERROR_REASON_IMAGE_PULL_FAILED:
			return v1alpha1.ReasonImagePullFailed
		case bpfdv1.ErrorReason_ERROR_REASON_VERIFIER_REJECTED:
			return v1alpha1.ReasonVerifierRejected
		case bpfdv1.ErrorReason_ERROR_REASON_ATTACH_FAILED:
			return v1alpha1.ReasonAttachFailed
		case bpfdv1.ErrorReason_ERROR_REASON_INVALID_REQUEST:
			return v1alpha1.ReasonInvalidRequest
		case bpfdv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED:
			// bpfd does not let the agent do it: its socket.adminGIDs
			// lack the agent's group. Not the trust policy's verdict.
			return v1alpha1.ReasonLoadFailed
		}
	}
	switch st.Code() {
	case codes.PermissionDenied:
		return v1alpha1.ReasonPolicyDenied
	case codes.FailedPrecondition:
		return v1alpha1.ReasonVerifierRejected
	case codes.AlreadyExists:
		return v1alpha1.ReasonAttachFailed
	case codes.InvalidArgument:
		return v1alpha1.ReasonInvalidRequest
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return v1alpha1.ReasonDaemonUnavailable
	}
	return v1alpha1.ReasonLoadFailed
}

// messageOf returns the part of an error of a call to bpfd meant for people:
// the status message without the "rpc error: code = ..." decoration.
func messageOf(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}

// retryable reports whether a failure with this reason may go away by itself
// soon (bpfd restarting, a registry or an interface coming back), so the
// agent retries with backoff rather than at the next resync.
func retryable(reason string) bool {
	switch reason {
	case v1alpha1.ReasonDaemonUnavailable, v1alpha1.ReasonImagePullFailed, v1alpha1.ReasonAttachFailed, v1alpha1.ReasonLoadFailed:
		return true
	}
	return false
}
