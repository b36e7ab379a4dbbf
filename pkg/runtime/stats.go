package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// While BPF statistics are held (HoldStats), the kernel counts every
// program's runs and run time (BPF_ENABLE_STATS, held by this process: the
// statistics go off when it exits), and the chains of XDP and TC hooks
// account each member's, which the kernel cannot: a linked chain is one
// kernel program, and the kernel counts no extension program. Accounting
// costs a clock read per member and packet; off, chains have no accounting
// code, so turning statistics on or off rebuilds every chain, swapped in
// atomically as on any change.

// statsControl is the Manager's hold on BPF statistics.
type statsControl struct {
	// mu serializes HoldStats and releases; holds counts the holders.
	mu    sync.Mutex
	holds int
	// enabled is the kernel's statistics, held while holds > 0.
	enabled io.Closer
	// on is whether chains should account: read by dispatcher() without
	// mu, which a rebuild holding hooks must not wait for.
	on atomic.Bool
	// names caches the names and types of programs bpfd did not load, by
	// kernel id, for Stats.
	namesMu sync.Mutex
	names   map[uint32]kernelName
}

type kernelName struct{ name, typ string }

// HoldStats turns BPF statistics on until release is called: the kernel's
// counters of every program, and the accounting of each member of the
// chains of XDP and TC hooks. Holds nest; the first turns statistics on,
// the last release turns them off. It fails with ErrUnsupported on kernels
// without BPF_ENABLE_STATS (Linux 5.8). A chain that cannot be rebuilt keeps
// running as it was, which is logged.
func (m *Manager) HoldStats(ctx context.Context) (release func(), err error) {
	if err := m.enter(); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	m.stats.mu.Lock()
	defer m.stats.mu.Unlock()
	if m.stats.holds == 0 {
		closer, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, ebpf.ErrNotSupported) {
			return nil, fmt.Errorf("enable BPF statistics: %w", classify(err, ErrUnsupported))
		}
		if err != nil {
			return nil, fmt.Errorf("enable BPF statistics: %w", kernelError(err))
		}
		m.stats.enabled = closer
		m.stats.on.Store(true)
		if err := m.settleAccounting(true); err != nil {
			m.log.Warn("turn on per-member accounting", "error", err)
		}
	}
	m.stats.holds++
	var once sync.Once
	return func() { once.Do(m.releaseStats) }, nil
}

// releaseStats drops one hold.
func (m *Manager) releaseStats() {
	if err := m.enter(); err != nil {
		return // Close released everything
	}
	defer m.mu.RUnlock()
	m.stats.mu.Lock()
	defer m.stats.mu.Unlock()
	if m.stats.holds--; m.stats.holds > 0 {
		return
	}
	m.stats.on.Store(false)
	if err := m.settleAccounting(false); err != nil {
		m.log.Warn("turn off per-member accounting", "error", err)
	}
	if err := m.stats.enabled.Close(); err != nil {
		m.log.Warn("disable BPF statistics", "error", err)
	}
	m.stats.enabled = nil
}

// StatsHeld reports whether BPF statistics are held.
func (m *Manager) StatsHeld() bool { return m.stats.on.Load() }

// closeStats drops every hold, for Close; chains keep accounting until the
// next Open settles them.
func (m *Manager) closeStats() error {
	m.stats.mu.Lock()
	defer m.stats.mu.Unlock()
	m.stats.holds = 0
	m.stats.on.Store(false)
	if m.stats.enabled == nil {
		return nil
	}
	err := m.stats.enabled.Close()
	m.stats.enabled = nil
	return err
}

// settleAccounting makes every chain account its members when on, and not
// otherwise, rebuilding those that do not.
func (m *Manager) settleAccounting(on bool) error {
	m.hooks.mu.Lock()
	keys := make([]string, 0, len(m.hooks.hooks))
	for k := range m.hooks.hooks {
		keys = append(keys, k)
	}
	m.hooks.mu.Unlock()
	slices.Sort(keys)
	var errs []error
	for _, key := range keys {
		states, unlock := m.hooks.lock(key)
		hs := states[key]
		if hs.disp != nil {
			hs.disp.SetAccounting(on)
			if ms := hs.snapshot(); len(ms) > 0 && hs.disp.State().Accounting != on {
				if err := m.applyChain(key, hs, hs.disp.Hook(), ms, nil); err != nil {
					errs = append(errs, fmt.Errorf("hook %s: %w", key, err))
				}
			}
		}
		unlock()
	}
	return errors.Join(errs...)
}

// ProgramStats are a program's runs and the time they took, cumulative.
type ProgramStats struct {
	// ID is bpfd's id; 0 for a program bpfd did not load.
	ID ID
	// KernelID is the kernel program that runs it: in a linked chain the
	// chain's one program.
	KernelID uint32
	// Name is its function name (the kernel's, possibly truncated, for a
	// program bpfd did not load).
	Name string
	// Kind is how bpfd attached it; empty for a program bpfd did not load,
	// whose kernel program type is KernelType.
	Kind       progtype.Kind
	KernelType string
	// Hook names the hook of a program in a chain.
	Hook string
	// RunCount and RunTime are its runs and their time.
	RunCount uint64
	RunTime  time.Duration
	// Accounted says its chain's dispatcher counted them; otherwise the
	// kernel did.
	Accounted bool
}

// Stats returns the runs of every program on the node: bpfd's programs in
// chains as their chains accounted them, every other program as the
// kernel counts it. The programs that run chains (dispatchers, and
// extension programs in freplace mode) are not listed: their members are.
// Counts move only while statistics are held (HoldStats), or while the
// sysctl kernel.bpf_stats_enabled is on for the kernel's counters.
func (m *Manager) Stats(ctx context.Context) ([]ProgramStats, error) {
	if err := m.enter(); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	rs, err := m.store.all()
	if err != nil {
		return nil, err
	}
	skip := m.hooks.chainPrograms()
	var out []ProgramStats
	chains := map[string]map[uint64]ProgramStats{}
	for _, r := range rs {
		if r.State != stateLoaded {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if r.ProgramID != 0 {
			skip[r.ProgramID] = true
		}
		p := ProgramStats{ID: r.ID, KernelID: r.ProgramID, Name: r.Name, Kind: r.Kind}
		if r.Chain != nil {
			counts, ok := chains[r.Hook]
			if !ok {
				counts = m.chainStats(r.Hook)
				chains[r.Hook] = counts
			}
			c := counts[uint64(r.ID)]
			p.KernelID, p.Hook, p.RunCount, p.RunTime, p.Accounted = c.KernelID, r.Hook, c.RunCount, c.RunTime, true
			out = append(out, p)
			continue
		}
		prog, err := ebpf.LoadPinnedProgram(m.programPin(r.ID), &ebpf.LoadPinOptions{ReadOnly: true})
		if err != nil {
			continue // unloaded meanwhile
		}
		if st, err := prog.Stats(); err == nil {
			p.RunCount, p.RunTime = st.RunCount, st.Runtime
		}
		if p.KernelType == "" {
			p.KernelType = prog.Type().String()
		}
		prog.Close()
		out = append(out, p)
	}
	unmanaged, err := m.kernelStats(ctx, skip)
	if err != nil {
		return nil, err
	}
	return append(out, unmanaged...), nil
}

// chainStats returns the members' stats of the chain of hook key, by
// member id, with the kernel id of the program that runs each.
func (m *Manager) chainStats(key string) map[uint64]ProgramStats {
	hs := m.hooks.state(key)
	hs.op.Lock()
	defer hs.op.Unlock()
	out := map[uint64]ProgramStats{}
	if hs.disp == nil {
		return out
	}
	st := hs.disp.State()
	stats, err := hs.disp.Stats()
	if err != nil {
		m.log.Warn("read chain counters", "hook", key, "error", err)
		return out
	}
	for i, s := range stats {
		p := ProgramStats{RunCount: s.RunCount, RunTime: s.RunTime}
		if i < len(st.Slots) {
			p.KernelID = uint32(st.Slots[i].ProgramID)
		}
		out[s.ID] = p
	}
	return out
}

// kernelStats returns the kernel's counts of every program not in skip.
func (m *Manager) kernelStats(ctx context.Context, skip map[uint32]bool) ([]ProgramStats, error) {
	m.stats.namesMu.Lock()
	defer m.stats.namesMu.Unlock()
	seen := map[uint32]bool{}
	var out []ProgramStats
	id := ebpf.ProgramID(0)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list kernel programs: %w", err)
		}
		id = next
		if skip[uint32(id)] {
			continue
		}
		prog, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // unloaded meanwhile
		}
		st, err := prog.Stats()
		if err != nil {
			prog.Close()
			continue
		}
		n, ok := m.stats.names[uint32(id)]
		if !ok {
			n.typ = prog.Type().String()
			if info, err := prog.Info(); err == nil {
				n.name = info.Name
			}
		}
		prog.Close()
		seen[uint32(id)] = true
		if m.stats.names == nil {
			m.stats.names = map[uint32]kernelName{}
		}
		m.stats.names[uint32(id)] = n
		out = append(out, ProgramStats{KernelID: uint32(id), Name: n.name, KernelType: n.typ, RunCount: st.RunCount, RunTime: st.Runtime})
	}
	for id := range m.stats.names {
		if !seen[id] {
			delete(m.stats.names, id)
		}
	}
	return out, nil
}
