package progtype

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
)

// Kind is a kind of BPF program as bpfd attaches it.
type Kind string

// The kinds bpfd attaches.
const (
	XDP        Kind = "xdp"
	TC         Kind = "tc"
	TCX        Kind = "tcx"
	Tracepoint Kind = "tracepoint"
	Kprobe     Kind = "kprobe"
	Kretprobe  Kind = "kretprobe"
	Uprobe     Kind = "uprobe"
	Uretprobe  Kind = "uretprobe"
	Fentry     Kind = "fentry"
	Fexit      Kind = "fexit"
	Cgroup     Kind = "cgroup"
	// RawTracepoint is a raw tracepoint program (section raw_tp/NAME or
	// raw_tracepoint/NAME): it gets the tracepoint's raw arguments.
	RawTracepoint Kind = "raw_tracepoint"
	// TPBTF is a BTF-enabled tracepoint program (section tp_btf/NAME): a
	// tracing program bound at load to the tracepoint's BTF type, whose
	// arguments it reads typed.
	TPBTF Kind = "tp_btf"
)

var all = []Kind{XDP, TC, TCX, Tracepoint, Kprobe, Kretprobe, Uprobe, Uretprobe, Fentry, Fexit, Cgroup, RawTracepoint, TPBTF}

// All returns every kind, in a stable order.
func All() []Kind { return slices.Clone(all) }

// Parse returns the kind named s (case-insensitive).
func Parse(s string) (Kind, error) {
	k := Kind(strings.ToLower(strings.TrimSpace(s)))
	if !slices.Contains(all, k) {
		return "", fmt.Errorf("unknown program type %q (want one of %s)", s, list(all))
	}
	return k, nil
}

func list(kinds []Kind) string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// Of returns the kinds the program p can be attached as, or nil when bpfd
// cannot attach it. A SchedCLS program may be attached as tc or tcx; the
// section name tells kprobes from kretprobes and uprobes from uretprobes.
func Of(p *ebpf.ProgramSpec) []Kind {
	section := p.SectionName
	switch p.Type {
	case ebpf.XDP:
		return []Kind{XDP}
	case ebpf.SchedCLS:
		if strings.HasPrefix(section, "tcx/") {
			return []Kind{TCX, TC}
		}
		return []Kind{TC, TCX}
	case ebpf.TracePoint:
		return []Kind{Tracepoint}
	case ebpf.RawTracepoint:
		return []Kind{RawTracepoint}
	case ebpf.Kprobe:
		switch prefix(section) {
		case "kretprobe", "kretprobe.multi":
			return []Kind{Kretprobe}
		case "uprobe", "uprobe.s", "uprobe.multi", "uprobe.multi.s":
			return []Kind{Uprobe}
		case "uretprobe", "uretprobe.s", "uretprobe.multi", "uretprobe.multi.s":
			return []Kind{Uretprobe}
		default:
			return []Kind{Kprobe}
		}
	case ebpf.Tracing:
		switch p.AttachType {
		case ebpf.AttachTraceFEntry:
			return []Kind{Fentry}
		case ebpf.AttachTraceFExit:
			return []Kind{Fexit}
		case ebpf.AttachTraceRawTp:
			return []Kind{TPBTF}
		}
	case ebpf.CGroupSKB, ebpf.CGroupSock, ebpf.CGroupSockAddr, ebpf.CGroupSockopt, ebpf.CGroupSysctl, ebpf.CGroupDevice, ebpf.SockOps:
		return []Kind{Cgroup}
	}
	return nil
}

// AttachTarget returns the hook named in p's ELF section, if any: the
// tracepoint ("syscalls/sys_enter_openat"), the kernel function of a kprobe or
// fentry program ("do_unlinkat"), the tracepoint of a raw or BTF-enabled
// tracepoint program ("sched_switch"), or "" when the section names none.
func AttachTarget(p *ebpf.ProgramSpec) string {
	switch p.Type {
	case ebpf.TracePoint, ebpf.Kprobe, ebpf.RawTracepoint:
		_, target, _ := strings.Cut(p.SectionName, "/")
		return target
	case ebpf.Tracing:
		return p.AttachTo
	}
	return ""
}

func prefix(section string) string {
	p, _, _ := strings.Cut(section, "/")
	return p
}
