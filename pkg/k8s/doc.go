// Package k8s is bpfd's Kubernetes side: the BpfProgramConfig and BpfProgram
// APIs and the controllers of bpfd-operator and bpfd-agent. It carries image
// references and attach intent to each node's bpfd and never pulls, verifies
// or loads bytecode itself.
package k8s
