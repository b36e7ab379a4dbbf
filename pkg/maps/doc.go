// Package maps opens, in an application's own process, the BPF maps that
// bpfd's CSI driver (csi.bpfd.io) published into a pod's volume: a bpffs of
// its own, holding exactly the maps the pod asked for, owned by the pod's
// fsGroup, readable by that group and writable only when the pod asked for
// write access.
//
// It is the user-space half of an application whose BPF programs bpfd
// loads: such a process needs no capabilities, no bpffs of the host and no
// knowledge of bpfd's pin paths, only the volume's mount path:
//
//	v, err := maps.Open("/run/bpfd/maps")
//	stats, err := v.Map("xdp_stats")
//	defer stats.Close()
//	var udp uint64
//	err = stats.Lookup(uint32(17), &udp)
//
// The package depends on cilium/ebpf and the standard library only, so an
// application imports a few hundred lines, not bpfd, a gRPC client or a
// Kubernetes client.
//
// An unprivileged process may open a pinned map (BPF_OBJ_GET) and read it
// on kernels that check kernel.unprivileged_bpf_disabled only where maps are
// created and programs loaded (5.19 and later); older kernels refuse every
// bpf() command to it while that sysctl is set, and Map says so with an
// error matching ErrUnprivilegedBPFDisabled (docs/kubernetes.md lists the
// kernels measured).
package maps
