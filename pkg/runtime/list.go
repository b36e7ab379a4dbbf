package runtime

import (
	"context"
	"fmt"
	"maps"
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
	// Stats reads every program's run statistics, one read per program,
	// also when the sysctl kernel.bpf_stats_enabled is off: statistics
	// switched on through BPF_ENABLE_STATS do not show in it, and a
	// program whose statistics moved reports them. Without it a List reads
	// statistics only while the sysctl is on.
	Stats bool
	// Records describes the managed programs from the Manager's records
	// alone, reading nothing from the kernel: Kernel is nil. It is what
	// judging every program again under the trust policy needs, and costs
	// no system call per program. All is ignored.
	Records bool
}

// Get returns the managed program id, or an error wrapping
// ErrProgramNotFound. The program's run statistics are read from the
// kernel, and reported when the kernel collects them.
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
	if !m.store.isLoaded(id) {
		return false
	}
	m.log.Warn("loaded program without a readable kernel program", "program_id", id)
	return true
}

// List returns the managed programs that match opts, by id, then with
// opts.All the unmanaged ones, by kernel program id.
//
// It answers from the Manager's records and what it knows of each kernel
// program, and reads from the kernel only what changes: which programs
// still exist (one walk over the kernel's program ids) and, while the
// kernel collects them (sysctl kernel.bpf_stats_enabled), run statistics.
func (m *Manager) List(ctx context.Context, opts ListOptions) ([]Program, error) {
	if err := m.enter(); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	if opts.Records {
		return m.listRecords(ctx, opts)
	}
	live, err := liveProgramIDs()
	if err != nil {
		return nil, err
	}
	m.kernel.prune(live)
	d := m.describer()
	d.live = live
	d.readStats = opts.Stats
	var out []Program
	managed := m.hooks.chainPrograms()
	for _, r := range m.store.loaded() {
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
	unmanaged, err := m.kernelPrograms(ctx, live, managed, opts.Kind, d)
	if err != nil {
		return nil, err
	}
	return append(out, unmanaged...), nil
}

// listRecords is List with opts.Records: the loaded records that match,
// described without the kernel.
func (m *Manager) listRecords(ctx context.Context, opts ListOptions) ([]Program, error) {
	d := m.describer()
	d.records = true
	var out []Program
	for _, r := range m.store.loaded() {
		if opts.Kind != "" && r.Kind != opts.Kind || !selects(opts.Selector, r.Metadata) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out = append(out, d.describe(r, nil))
	}
	return out, nil
}

func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// kernelPrograms returns the kernel's programs in live that are not in
// managed, by id, keeping those that can be attached as kind when kind is
// set.
func (m *Manager) kernelPrograms(ctx context.Context, live map[ebpf.ProgramID]bool, managed map[uint32]bool, kind progtype.Kind, d *describer) ([]Program, error) {
	var out []Program
	for _, id := range slices.Sorted(maps.Keys(live)) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if managed[uint32(id)] {
			continue
		}
		k, typ := m.kernel.kernelInfo(id, nil, d.stats || d.readStats, d.stats)
		if k == nil || kind != "" && !slices.Contains(kindsOfType(typ), kind) {
			continue // unloaded meanwhile, or of another kind
		}
		out = append(out, Program{Name: k.Name, Kernel: k})
	}
	return out, nil
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
