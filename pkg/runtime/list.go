package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// ListOptions filter List. The zero value lists every managed program.
type ListOptions struct {
	// Kind, if set, keeps programs of that kind. Unmanaged programs are kept
	// when their kernel program type can be attached as Kind.
	Kind progtype.Kind
	// Selector keeps programs whose metadata has every key with its value;
	// unmanaged programs have none.
	Selector map[string]string
	// All also lists the node's programs bpfd did not load (Managed false),
	// by kernel program id.
	All bool
}

// Get returns the managed program id, or an error wrapping
// ErrProgramNotFound.
func (m *Manager) Get(ctx context.Context, id ID) (Program, error) {
	if err := m.enter(); err != nil {
		return Program{}, err
	}
	defer m.mu.RUnlock()
	r, err := m.store.get(id)
	if err != nil {
		return Program{}, err
	}
	if r.State != stateLoaded {
		return Program{}, fmt.Errorf("program %d: %w", id, ErrProgramNotFound)
	}
	p := m.describer().describe(r, nil)
	if p.Kernel == nil && !m.stillLoaded(id) {
		return Program{}, fmt.Errorf("program %d: %w", id, ErrProgramNotFound)
	}
	return p, nil
}

// stillLoaded reports whether the record of id still says loaded: a
// program whose kernel program could not be read may have been unloaded
// since its record was read. One still loaded without its kernel program
// is logged.
func (m *Manager) stillLoaded(id ID) bool {
	r, err := m.store.get(id)
	if err != nil || r.State != stateLoaded {
		return false
	}
	m.log.Warn("loaded program without a readable kernel program", "program_id", id)
	return true
}

// List returns the managed programs that match opts, by id, then with
// opts.All the unmanaged ones, by kernel program id.
func (m *Manager) List(ctx context.Context, opts ListOptions) ([]Program, error) {
	if err := m.enter(); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	rs, err := m.store.all()
	if err != nil {
		return nil, err
	}
	d := m.describer()
	var out []Program
	managed := m.hooks.chainPrograms()
	for _, r := range rs {
		if r.State != stateLoaded {
			continue
		}
		managed[r.ProgramID] = true
		if opts.Kind != "" && r.Kind != opts.Kind || !selects(opts.Selector, r.Metadata) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := d.describe(r, nil)
		if p.Kernel == nil && !m.stillLoaded(r.ID) {
			continue // unloaded meanwhile
		}
		out = append(out, p)
	}
	if !opts.All || len(opts.Selector) > 0 {
		return out, nil
	}
	unmanaged, err := kernelPrograms(ctx, managed, opts.Kind, d)
	if err != nil {
		return nil, err
	}
	return append(out, unmanaged...), nil
}

func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// kernelPrograms walks the kernel's programs and returns those not in
// managed, keeping those that can be attached as kind when kind is set.
func kernelPrograms(ctx context.Context, managed map[uint32]bool, kind progtype.Kind, d *describer) ([]Program, error) {
	var out []Program
	id := ebpf.ProgramID(0)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list kernel programs: %w", err)
		}
		id = next
		if managed[uint32(id)] {
			continue
		}
		prog, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // unloaded meanwhile
		}
		k := kernelInfo(prog, d.boot, d.stats)
		typ := prog.Type()
		prog.Close()
		if k == nil || kind != "" && !slices.Contains(kindsOfType(typ), kind) {
			continue
		}
		out = append(out, Program{Name: k.Name, Kernel: k})
	}
}

// kindsOfType returns the kinds a program of kernel type t may be attached
// as.
func kindsOfType(t ebpf.ProgramType) []progtype.Kind {
	switch t {
	case ebpf.XDP:
		return []progtype.Kind{progtype.XDP}
	case ebpf.SchedCLS:
		return []progtype.Kind{progtype.TC, progtype.TCX}
	case ebpf.TracePoint:
		return []progtype.Kind{progtype.Tracepoint}
	case ebpf.Kprobe:
		return []progtype.Kind{progtype.Kprobe, progtype.Kretprobe, progtype.Uprobe, progtype.Uretprobe}
	case ebpf.Tracing:
		return []progtype.Kind{progtype.Fentry, progtype.Fexit, progtype.TPBTF}
	case ebpf.RawTracepoint:
		return []progtype.Kind{progtype.RawTracepoint}
	case ebpf.CGroupSKB, ebpf.CGroupSock, ebpf.CGroupSockAddr, ebpf.CGroupSockopt, ebpf.CGroupSysctl, ebpf.CGroupDevice, ebpf.SockOps:
		return []progtype.Kind{progtype.Cgroup}
	}
	return nil
}
