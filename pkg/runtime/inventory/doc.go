// Package inventory reports every BPF program, map and link on the node, as
// the kernel knows them, and who holds each: the processes with a file
// descriptor of it, with their cgroup and, where the cgroup is named as the
// kubelet names a container's, the pod's uid and the container's id; and the
// pins of each under every mounted bpffs.
//
// It is the kernel side only. It knows nothing of bpfd's own records: the
// daemon joins what Scan returns with the programs it manages (their config,
// digest, signer and owner).
//
// Holders are found with a BPF iterator over the tasks' open files
// (bytecode/inventory/task_files.bpf.c, compiled with Debian's clang and
// embedded), as bpftool does to show the pids of a program, or, where the
// kernel has no such iterator, by reading /proc/<pid>/fdinfo of every
// process. Everything Scan reports is bounded by its Options; what a bound
// left out is counted in Inventory.Omitted.
//
// Scan needs CAP_SYS_ADMIN (or CAP_BPF and CAP_PERFMON) to open other
// processes' objects by id, and CAP_SYS_PTRACE to read their descriptors
// under /proc; without them it reports what it could read.
package inventory
