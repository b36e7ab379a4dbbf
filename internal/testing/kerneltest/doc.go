// Package kerneltest holds smoke tests of the kernel features bpfd builds on,
// run directly against the kernel with cilium/ebpf: kprobes and kretprobes,
// fentry and fexit, freplace, and XDP on a veth pair with traffic. The host
// runs what its kernel allows and skips the rest with the reason; `make
// test-vm` runs them all on Debian's stock 6.1 kernel, where none may skip.
package kerneltest
