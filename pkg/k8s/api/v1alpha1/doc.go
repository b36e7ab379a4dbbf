// Package v1alpha1 is bpfd's Kubernetes API, group bpfd.io: the cluster-wide
// BpfProgramConfig, which says which programs of which signed artifact go to
// which nodes, and the per-node BpfProgram, in which each node's agent reports
// what its bpfd loaded, from which digest, admitted by which signer and rule.
// A namespace's BpfTenantProgramConfig runs programs for its own pods only,
// reported in BpfTenantPrograms beside it; the cluster's BpfTenantGrant says
// which program types beyond its pods each namespace may use.
//
// The types carry references and attach intent only; pulling, verifying and
// loading happen in each node's bpfd, under that node's trust policy.
//
// +kubebuilder:object:generate=true
// +groupName=bpfd.io
package v1alpha1
