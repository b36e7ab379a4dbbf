package v1alpha1

// Condition types.
const (
	// ConditionReady is True on a BpfProgram when the node loaded the
	// config's current generation, and on a BpfProgramConfig when every
	// selected node did.
	ConditionReady = "Ready"
	// ConditionProgressing is True on a BpfProgramConfig while some selected
	// node has not reported on the current generation or some node is
	// unloading.
	ConditionProgressing = "Progressing"
	// ConditionDegraded is True on a BpfProgramConfig when some selected
	// node failed.
	ConditionDegraded = "Degraded"
)

// Reasons of a BpfProgram's Ready condition.
const (
	// ReasonLoaded: the programs are loaded and attached (Ready True).
	ReasonLoaded = "Loaded"
	// ReasonPending: the agent has not loaded the programs yet, e.g. while
	// the operator has not yet put the node's finalizer on the config.
	ReasonPending = "Pending"
	// ReasonMapOwnerNotReady: the mapOwnerSelector matches no config, more
	// than one, or one not loaded on this node yet.
	ReasonMapOwnerNotReady = "MapOwnerNotReady"
	// ReasonUnloading: the node is unloading the programs because the config
	// is being deleted or no longer selects the node.
	ReasonUnloading = "Unloading"
	// ReasonPolicyDenied: the node's trust policy refused the artifact.
	ReasonPolicyDenied = "PolicyDenied"
	// ReasonVerifierRejected: the kernel's verifier refused a program, or the
	// kernel lacks a feature it needs.
	ReasonVerifierRejected = "VerifierRejected"
	// ReasonAttachFailed: a hook is missing (interface, function, cgroup) or
	// taken.
	ReasonAttachFailed = "AttachFailed"
	// ReasonImagePullFailed: the reference could not be resolved or pulled.
	ReasonImagePullFailed = "ImagePullFailed"
	// ReasonInvalidRequest: bpfd found the request wrong for the artifact,
	// e.g. a program name or a global variable it does not have.
	ReasonInvalidRequest = "InvalidRequest"
	// ReasonLoadFailed: any other failure of bpfd; the message says more.
	ReasonLoadFailed = "LoadFailed"
	// ReasonDaemonUnavailable: the node's bpfd did not answer.
	ReasonDaemonUnavailable = "DaemonUnavailable"
)

// Reasons of a BpfProgramConfig's conditions.
const (
	// ReasonAllNodesLoaded: every selected node loaded the programs.
	ReasonAllNodesLoaded = "AllNodesLoaded"
	// ReasonNoNodesSelected: the nodeSelector matches no node.
	ReasonNoNodesSelected = "NoNodesSelected"
	// ReasonNodesPending: some selected node has not reported yet.
	ReasonNodesPending = "NodesPending"
	// ReasonNodesUnloading: some node no longer selected is unloading.
	ReasonNodesUnloading = "NodesUnloading"
	// ReasonNodesFailed: some selected node failed.
	ReasonNodesFailed = "NodesFailed"
	// ReasonConverged: no node is pending or unloading.
	ReasonConverged = "Converged"
	// ReasonNoFailures: no selected node failed.
	ReasonNoFailures = "NoFailures"
)

// FailureReason reports whether a BpfProgram Ready reason means the node
// failed, as opposed to loaded or still working on it.
func FailureReason(reason string) bool {
	switch reason {
	case ReasonPolicyDenied, ReasonVerifierRejected, ReasonAttachFailed, ReasonImagePullFailed,
		ReasonInvalidRequest, ReasonLoadFailed, ReasonDaemonUnavailable:
		return true
	}
	return false
}
