// Package appclient is for the programs that deploy applications built on
// bpfd: an application operator creates, updates and watches the
// BpfProgramConfigs of its application and reads how each node fares; an
// application's per-node agent finds its node's BpfProgram and waits until
// the programs are loaded before it mounts or opens their maps (package
// maps opens them).
//
// It needs the controller-runtime client and bpfd's API types only: no
// gRPC, no cilium/ebpf, nothing of bpfd's daemon or controllers. In RBAC
// terms an operator needs what the ClusterRole
// bpfd-bpfprogramconfig-editor grants, an agent what
// bpfd-bpfprogram-viewer grants.
package appclient
