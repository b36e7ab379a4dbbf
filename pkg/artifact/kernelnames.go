package artifact

import (
	"strconv"
	"strings"
	"unicode"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// The kernel's names for program, attach and map types: the uapi enum
// constants (linux/bpf.h) without their prefix, lower case, indexed by value.
// A value newer than these tables is written as its decimal number.
var (
	programTypeNames = []string{
		"unspec", "socket_filter", "kprobe", "sched_cls", "sched_act", "tracepoint", "xdp",
		"perf_event", "cgroup_skb", "cgroup_sock", "lwt_in", "lwt_out", "lwt_xmit", "sock_ops",
		"sk_skb", "cgroup_device", "sk_msg", "raw_tracepoint", "cgroup_sock_addr",
		"lwt_seg6local", "lirc_mode2", "sk_reuseport", "flow_dissector", "cgroup_sysctl",
		"raw_tracepoint_writable", "cgroup_sockopt", "tracing", "struct_ops", "ext", "lsm",
		"sk_lookup", "syscall", "netfilter",
	}
	attachTypeNames = []string{
		"cgroup_inet_ingress", "cgroup_inet_egress", "cgroup_inet_sock_create", "cgroup_sock_ops",
		"sk_skb_stream_parser", "sk_skb_stream_verdict", "cgroup_device", "sk_msg_verdict",
		"cgroup_inet4_bind", "cgroup_inet6_bind", "cgroup_inet4_connect", "cgroup_inet6_connect",
		"cgroup_inet4_post_bind", "cgroup_inet6_post_bind", "cgroup_udp4_sendmsg",
		"cgroup_udp6_sendmsg", "lirc_mode2", "flow_dissector", "cgroup_sysctl",
		"cgroup_udp4_recvmsg", "cgroup_udp6_recvmsg", "cgroup_getsockopt", "cgroup_setsockopt",
		"trace_raw_tp", "trace_fentry", "trace_fexit", "modify_return", "lsm_mac", "trace_iter",
		"cgroup_inet4_getpeername", "cgroup_inet6_getpeername", "cgroup_inet4_getsockname",
		"cgroup_inet6_getsockname", "xdp_devmap", "cgroup_inet_sock_release", "xdp_cpumap",
		"sk_lookup", "xdp", "sk_skb_verdict", "sk_reuseport_select",
		"sk_reuseport_select_or_migrate", "perf_event", "trace_kprobe_multi", "lsm_cgroup",
		"struct_ops", "netfilter", "tcx_ingress", "tcx_egress", "trace_uprobe_multi",
		"cgroup_unix_connect", "cgroup_unix_sendmsg", "cgroup_unix_recvmsg",
		"cgroup_unix_getpeername", "cgroup_unix_getsockname", "netkit_primary", "netkit_peer",
		"trace_kprobe_session", "trace_uprobe_session", "trace_fsession",
	}
	mapTypeNames = []string{
		"unspec", "hash", "array", "prog_array", "perf_event_array", "percpu_hash",
		"percpu_array", "stack_trace", "cgroup_array", "lru_hash", "lru_percpu_hash", "lpm_trie",
		"array_of_maps", "hash_of_maps", "devmap", "sockmap", "cpumap", "xskmap", "sockhash",
		"cgroup_storage", "reuseport_sockarray", "percpu_cgroup_storage", "queue", "stack",
		"sk_storage", "devmap_hash", "struct_ops", "ringbuf", "inode_storage", "task_storage",
		"bloom_filter", "user_ringbuf", "cgrp_storage", "arena", "insn_array",
	}
)

func kernelName(names []string, v uint32) string {
	if int(v) < len(names) {
		return names[v]
	}
	return strconv.FormatUint(uint64(v), 10)
}

func programTypeName(t ebpf.ProgramType) string { return kernelName(programTypeNames, uint32(t)) }
func attachTypeName(t ebpf.AttachType) string   { return kernelName(attachTypeNames, uint32(t)) }
func mapTypeName(t ebpf.MapType) string         { return kernelName(mapTypeNames, uint32(t)) }

// helperName returns the kernel's name of a BPF helper, e.g.
// "bpf_map_lookup_elem" for asm.FnMapLookupElem, by undoing the camel case
// cilium/ebpf derives from the kernel's list of helpers.
func helperName(fn asm.BuiltinFunc) string {
	s, ok := strings.CutPrefix(fn.String(), "Fn")
	if !ok { // a helper newer than cilium/ebpf: BuiltinFunc(N)
		return strconv.FormatInt(int64(fn), 10)
	}
	var b strings.Builder
	b.WriteString("bpf")
	for i, r := range s {
		if unicode.IsUpper(r) {
			b.WriteByte('_')
			r = unicode.ToLower(r)
		} else if i == 0 {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return b.String()
}
