// Package progtype names the kinds of BPF programs bpfd attaches — the
// vocabulary shared by artifacts, trust policies, the gRPC API and the
// Kubernetes API — and tells which kinds an ELF program can be attached as.
//
// A kind is a program type together with the way it is attached: kprobe and
// kretprobe are both BPF_PROG_TYPE_KPROBE programs, tc and tcx are both
// BPF_PROG_TYPE_SCHED_CLS programs attached through different kernel hooks.
package progtype
