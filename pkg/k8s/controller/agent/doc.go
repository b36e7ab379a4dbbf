// Package agent is bpfd-agent's controller. One agent runs on every node,
// beside bpfd in the same pod. It watches the BpfProgramConfigs whose
// nodeSelector matches its node, asks the node's bpfd over its unix socket to
// load their programs (it sends the image reference and attach specs, never
// bytecode or credentials: bpfd pulls and verifies), and reports the outcome
// in the node's BpfProgram for each config.
//
// The agent is level-based: bpfd's List, filtered by the metadata labels the
// agent puts on every program it loads (the config's name, uid and a hash of
// the request), is the truth about what is loaded, so the agent converges
// after its own restarts, bpfd's restarts, config edits and deletions. It
// writes to the API only when what it reports changed.
//
// The agent's service account reads configs and nodes and writes only
// BpfPrograms; it has no access to Secrets (registry credentials are mounted
// into bpfd) and cannot change a config. The finalizers that hold a config
// until every node unloaded it are therefore kept by bpfd-operator; the agent
// waits for its node's finalizer before it loads anything.
//
// The TenantReconciler does the same for the namespaced
// BpfTenantProgramConfigs, for the pods each selects on the node: it lists
// pods of the config's namespace only (from its cache of its node's pods),
// finds their processes through a PodScanner (the node's /proc), and asks
// bpfd to attach in those pods' network namespaces and containers, naming
// the config's namespace as the programs' owner and the pods and the
// namespace's grants as the request's tenant scope, which bpfd enforces. It
// reports in BpfTenantPrograms beside the config. Both reconcilers share
// everything but what they load (configReconciler): the finalizer wait,
// unloading before a report is deleted, the report's creation and its
// status writes, which are coalesced with what the agent last wrote until
// its cache holds it (lastWrites).
package agent
