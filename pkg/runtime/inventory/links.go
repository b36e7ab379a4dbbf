package inventory

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// linkSettleRetries bounds how often a scan goes on past a link the kernel
// says is not yet settled (EAGAIN).
const linkSettleRetries = 5

// Link is a BPF link: a program attached to a hook.
type Link struct {
	ID uint32
	// Type is the kind of link, e.g. "xdp", "tcx", "perf_event" (see
	// linkTypeNames).
	Type string
	// ProgramID is the program it attaches.
	ProgramID uint32
	// Attach is where.
	Attach Attachment
	// Pins are its paths under the bpffs mounts.
	Pins []string
	// Holders are the processes holding a descriptor of it.
	Holders []Holder
}

// linkTypeNames name the kernel's link types as bpftool does.
var linkTypeNames = map[link.Type]string{
	link.RawTracepointType: "raw_tracepoint",
	link.TracingType:       "tracing",
	link.CgroupType:        "cgroup",
	link.IterType:          "iter",
	link.NetNsType:         "netns",
	link.XDPType:           "xdp",
	link.PerfEventType:     "perf_event",
	link.KprobeMultiType:   "kprobe_multi",
	link.TCXType:           "tcx",
	link.UprobeMultiType:   "uprobe_multi",
	link.NetfilterType:     "netfilter",
	link.NetkitType:        "netkit",
	link.StructOpsType:     "struct_ops",
}

func linkTypeName(t link.Type) string {
	if n, ok := linkTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type %d", t)
}

// links lists the kernel's links and where each attaches.
func (s *scan) links(ctx context.Context) error {
	s.linkIndex = map[uint32]int{}
	r := newResolver()
	it := new(link.Iterator)
	defer func() { it.Close() }()
	for retries := 0; ; {
		for it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if len(s.inv.Links) >= s.opts.MaxObjects {
				s.inv.Omitted.Links++
				continue
			}
			if s.own(kindLink, uint32(it.ID)) {
				continue
			}
			info, err := it.Link.Info()
			if err != nil {
				continue // gone, or a kind whose info the kernel does not give
			}
			l := Link{ID: uint32(info.ID), Type: linkTypeName(info.Type), ProgramID: uint32(info.Program)}
			l.Attach = r.describe(info, s.programType(info.Program))
			s.linkIndex[l.ID] = len(s.inv.Links)
			s.inv.Links = append(s.inv.Links, l)
		}
		err := it.Err()
		// A link being attached by another process has an id but is
		// not yet settled: the kernel answers EAGAIN for it. Go on from
		// the last link read, a few times over some 60 ms, as it settles or goes.
		if errors.Is(err, unix.EAGAIN) && retries < linkSettleRetries {
			retries++
			time.Sleep(time.Duration(1<<retries) * time.Millisecond)
			it = &link.Iterator{ID: it.ID}
			continue
		}
		if err != nil {
			return fmt.Errorf("list links: %w", err)
		}
		break
	}
	for _, l := range s.inv.Links {
		if i, ok := s.progIndex[l.ProgramID]; ok {
			s.inv.Programs[i].LinkIDs = append(s.inv.Programs[i].LinkIDs, l.ID)
		}
	}
	return nil
}

// programType returns the type of program id, from the scan when it is
// there, else from the kernel; UnspecifiedProgram when it is gone.
func (s *scan) programType(id ebpf.ProgramID) ebpf.ProgramType {
	if i, ok := s.progIndex[uint32(id)]; ok {
		t, _ := programTypeByName[s.inv.Programs[i].Type]
		return t
	}
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return ebpf.UnspecifiedProgram
	}
	defer p.Close()
	return p.Type()
}

// programTypeByName maps the names Program.Type has back to the types
// attachments are described by.
var programTypeByName = map[string]ebpf.ProgramType{
	ebpf.Extension.String(): ebpf.Extension,
	ebpf.Tracing.String():   ebpf.Tracing,
	ebpf.LSM.String():       ebpf.LSM,
}
