// Package operator is bpfd-operator's controllers.
//
// The config controller keeps, on every BpfProgramConfig, one finalizer per
// node that may hold its programs (the selected nodes, and nodes whose agent
// still reports on it), so that a deleted config disappears only after each
// node's agent unloaded it; a node that is gone releases its finalizer, and
// its BpfProgram is deleted. It also sums up the nodes' BpfPrograms in the
// config's status: nodes selected, loaded and failed, the first failures, and
// the Ready, Progressing and Degraded conditions. Agents cannot write configs
// (least privilege), which is why the finalizers are the operator's. The
// tenant config controller does the same for BpfTenantProgramConfigs and
// their BpfTenantPrograms, with the same finalizers and aggregation.
//
// The DaemonSet controller turns the bpfd-config ConfigMap into the bpfd
// DaemonSet: bpfd (privileged, with the host's bpffs and /run/bpfd, the trust
// policy and the registry credentials) and bpfd-agent (unprivileged, with the
// socket and the only service-account token in the pod) on every node.
package operator
