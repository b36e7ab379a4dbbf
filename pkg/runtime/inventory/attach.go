package inventory

import (
	"fmt"
	"net"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// The hooks an Attachment names in its Hook field.
const (
	HookXDP           = "xdp"
	HookTCX           = "tcx"
	HookNetkit        = "netkit"
	HookCgroup        = "cgroup"
	HookTracepoint    = "tracepoint"
	HookKprobe        = "kprobe"
	HookKretprobe     = "kretprobe"
	HookUprobe        = "uprobe"
	HookUretprobe     = "uretprobe"
	HookPerfEvent     = "perf_event"
	HookKprobeMulti   = "kprobe_multi"
	HookUprobeMulti   = "uprobe_multi"
	HookRawTracepoint = "raw_tracepoint"
	// HookTracing is a trampoline on a kernel function or a BPF program:
	// fentry, fexit, fmod_ret, lsm, freplace (AttachType says which).
	HookTracing   = "tracing"
	HookNetns     = "netns"
	HookNetfilter = "netfilter"
	HookStructOps = "struct_ops"
	HookIter      = "iter"
)

// Attachment is where a link attaches its program, as far as the kernel
// says. Hook names the kind of hook; the fields that apply to it are set.
type Attachment struct {
	Hook string
	// AttachType is the kernel's attach type, e.g. "TCXIngress",
	// "CGroupInetEgress", "TraceFEntry", where the kernel reports one.
	AttachType string

	// Ifindex is the interface of an xdp, tcx or netkit hook, in the
	// network namespace it was attached in; Interface its name when bpfd's
	// namespace has an interface of that index (the kernel does not say
	// which namespace).
	Ifindex   uint32
	Interface string
	// Direction is "ingress" or "egress" (tcx), "primary" or "peer"
	// (netkit).
	Direction string

	// CgroupID is the cgroup of a cgroup hook; Cgroup its path under the
	// cgroup v2 mount, when found.
	CgroupID uint64
	Cgroup   string

	// Tracepoint is "group/name" of a tracepoint, or the name of a raw
	// tracepoint.
	Tracepoint string
	// Function is the kernel function of a kprobe or trampoline, or the
	// function of TargetProgramID a freplace or fentry on a program
	// replaces or traces; Offset is added to it (kprobe); Address is the
	// kprobe's address, where the kernel shows it (only to root).
	Function string
	Offset   uint64
	Address  uint64
	// TargetProgramID is the program a trampoline (freplace, fentry on
	// BPF) attaches to.
	TargetProgramID uint32
	// File is the executable or library of a uprobe, as named when it was
	// attached; PID limits a uprobe_multi to one process.
	File string
	PID  uint32
	// Count is the number of functions or offsets of a multi probe.
	Count uint32
	// Missed counts runs the kernel skipped (kprobes, multi probes).
	Missed uint64
	// PerfEventType and PerfEventConfig identify a perf event (type and
	// config of perf_event_open).
	PerfEventType   uint32
	PerfEventConfig uint64
	// NetnsInode is the network namespace of a netns hook (flow
	// dissector, sk_lookup).
	NetnsInode uint32
	// Netfilter hooks: protocol family, hook number and priority.
	NetfilterFamily   uint32
	NetfilterHook     uint32
	NetfilterPriority int32
}

// String says in a few words where the link attaches.
func (a Attachment) String() string {
	var parts []string
	add := func(format string, v any, ok bool) {
		if ok {
			parts = append(parts, fmt.Sprintf(format, v))
		}
	}
	add("%s", a.Hook, a.Hook != "")
	switch {
	case a.Interface != "":
		add("%s", a.Interface, true)
	case a.Ifindex != 0:
		add("ifindex %d", a.Ifindex, true)
	}
	add("%s", a.Direction, a.Direction != "")
	switch {
	case a.Cgroup != "":
		add("%s", a.Cgroup, true)
	case a.CgroupID != 0:
		add("cgroup id %d", a.CgroupID, true)
	}
	add("%s", a.Tracepoint, a.Tracepoint != "")
	add("prog %d", a.TargetProgramID, a.TargetProgramID != 0)
	add("%s", a.File, a.File != "")
	add("%s", a.Function, a.Function != "")
	add("+%#x", a.Offset, a.Offset != 0)
	add("pid %d", a.PID, a.PID != 0)
	add("%d functions", a.Count, a.Count != 0)
	add("netns %d", a.NetnsInode, a.NetnsInode != 0)
	add("type %d", a.PerfEventType, a.PerfEventType != 0)
	add("config %#x", a.PerfEventConfig, a.PerfEventConfig != 0)
	add("%s", a.AttachType, a.AttachType != "" && a.Direction == "")
	return strings.Join(parts, " ")
}

// resolver turns the numbers of link infos into names, caching what it
// read for one scan.
type resolver struct {
	ifnames map[uint32]string
	cgroups *cgroupPaths
	btf     *btfNames
}

func newResolver() *resolver {
	return &resolver{ifnames: map[uint32]string{}, cgroups: newCgroupPaths(), btf: newBTFNames()}
}

func (r *resolver) ifname(ifindex uint32) string {
	if n, ok := r.ifnames[ifindex]; ok {
		return n
	}
	n := ""
	if i, err := net.InterfaceByIndex(int(ifindex)); err == nil {
		n = i.Name
	}
	r.ifnames[ifindex] = n
	return n
}

// describe says where the link of info attaches; progType is its
// program's type.
func (r *resolver) describe(info *link.Info, progType ebpf.ProgramType) Attachment {
	a := Attachment{Hook: linkTypeName(info.Type)}
	switch {
	case info.XDP() != nil:
		a.Ifindex = info.XDP().Ifindex
	case info.TCX() != nil:
		t := info.TCX()
		a.Ifindex, a.AttachType = t.Ifindex, ebpf.AttachType(t.AttachType).String()
		a.Direction = map[ebpf.AttachType]string{ebpf.AttachTCXIngress: "ingress", ebpf.AttachTCXEgress: "egress"}[ebpf.AttachType(t.AttachType)]
	case info.Netkit() != nil:
		n := info.Netkit()
		a.Ifindex, a.AttachType = n.Ifindex, ebpf.AttachType(n.AttachType).String()
		a.Direction = map[ebpf.AttachType]string{ebpf.AttachNetkitPrimary: "primary", ebpf.AttachNetkitPeer: "peer"}[ebpf.AttachType(n.AttachType)]
	case info.Cgroup() != nil:
		c := info.Cgroup()
		a.CgroupID, a.AttachType = c.CgroupId, cgroupAttachType(ebpf.AttachType(c.AttachType))
		a.Cgroup = r.cgroups.path(c.CgroupId)
	case info.NetNs() != nil:
		n := info.NetNs()
		a.NetnsInode, a.AttachType = n.NetnsInode, ebpf.AttachType(n.AttachType).String()
	case info.Tracing() != nil:
		t := info.Tracing()
		a.AttachType = ebpf.AttachType(t.AttachType).String()
		if progType == ebpf.Extension {
			a.AttachType = "Extension"
		}
		a.Function, a.TargetProgramID = r.btf.target(progType, t.TargetObjectId, uint32(t.TargetBtfId))
	case info.RawTracepoint() != nil:
		a.Tracepoint = info.RawTracepoint().Name
	case info.KprobeMulti() != nil:
		k := info.KprobeMulti()
		a.Count, a.Missed = k.Count, k.Missed
		if k.Flags&1 != 0 { // BPF_F_KPROBE_MULTI_RETURN
			a.AttachType = "return"
		}
	case info.UprobeMulti() != nil:
		u := info.UprobeMulti()
		a.Count, a.Missed, a.File = u.Count, u.Missed, u.File
		a.PID, _ = u.Pid()
		if u.Flags&1 != 0 { // BPF_F_UPROBE_MULTI_RETURN
			a.AttachType = "return"
		}
	case info.Netfilter() != nil:
		n := info.Netfilter()
		a.NetfilterFamily, a.NetfilterHook, a.NetfilterPriority = uint32(n.ProtocolFamily), uint32(n.Hook), n.Priority
	case info.PerfEvent() != nil:
		describePerfEvent(&a, info.PerfEvent())
	}
	if a.Ifindex != 0 {
		a.Interface = r.ifname(a.Ifindex)
	}
	return a
}

// cgroupAttachType names a cgroup hook's attach type. Its first,
// BPF_CGROUP_INET_INGRESS, shares the value 0 with ebpf.AttachNone, whose
// name it would otherwise get.
func cgroupAttachType(t ebpf.AttachType) string {
	if t == ebpf.AttachCGroupInetIngress {
		return "CGroupInetIngress"
	}
	return t.String()
}

func describePerfEvent(a *Attachment, p *link.PerfEventInfo) {
	switch p.Type {
	case link.PerfEventKprobe, link.PerfEventKretprobe:
		a.Hook = HookKprobe
		if p.Type == link.PerfEventKretprobe {
			a.Hook = HookKretprobe
		}
		if k := p.Kprobe(); k != nil {
			a.Function, a.Offset, a.Address, a.Missed = k.Function, uint64(k.Offset), k.Address, k.Missed
		}
	case link.PerfEventUprobe, link.PerfEventUretprobe:
		a.Hook = HookUprobe
		if p.Type == link.PerfEventUretprobe {
			a.Hook = HookUretprobe
		}
		if u := p.Uprobe(); u != nil {
			a.File, a.Offset = u.File, uint64(u.Offset)
		}
	case link.PerfEventTracepoint:
		a.Hook = HookTracepoint
		if t := p.Tracepoint(); t != nil {
			a.Tracepoint = t.Tracepoint
		}
	case link.PerfEventEvent:
		if e := p.Event(); e != nil {
			a.PerfEventType, a.PerfEventConfig = e.Type, e.Config
		}
	}
}
