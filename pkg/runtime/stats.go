package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
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
	// namesMu guards the caches of Stats: names are the names and types
	// of kernel programs by id; records bpfd's records by key, as stored
	// and as decoded.
	namesMu sync.Mutex
	names   map[uint32]kernelName
	records map[string]statsRecord
}

type kernelName struct{ name, typ string }

// statsRecord is what Stats needs of a record, and the stored bytes it
// was decoded from.
type statsRecord struct {
	raw       []byte
	ID        ID            `json:"id"`
	State     recordState   `json:"state"`
	Name      string        `json:"name"`
	Kind      progtype.Kind `json:"kind"`
	Hook      string        `json:"hook"`
	ProgramID uint32        `json:"programId"`
	Chain     *struct{}     `json:"chain"`
}

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
			// A lone program runs with no dispatcher and is never
			// accounted: the kernel counts it.
			if st := hs.disp.State(); len(hs.snapshot()) > 0 && st.Mode != dispatcher.ModeDirect && st.Accounting != on {
				ms := hs.snapshot()
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
	// kernel did, or, for a program alone on its hook (run with no
	// dispatcher), the kernel since it runs alone plus what the chains it
	// was in accounted before.
	Accounted bool
}

// Stats returns the runs of every program on the node: bpfd's programs in
// chains as their chains accounted them, one alone on its hook (with no
// dispatcher) as the kernel counts it plus what the chains it was in
// accounted, every other program as the kernel counts it. The programs that run chains (dispatchers, and
// extension programs in freplace mode) are not listed: their members are.
// Counts move only while statistics are held (HoldStats), or while the
// sysctl kernel.bpf_stats_enabled is on for the kernel's counters.
func (m *Manager) Stats(ctx context.Context) ([]ProgramStats, error) {
	if err := m.enter(); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	m.stats.namesMu.Lock()
	defer m.stats.namesMu.Unlock()
	rs, err := m.statsRecords()
	if err != nil {
		return nil, err
	}
	skip := m.hooks.chainPrograms()
	// bpfd's programs outside chains, by the kernel program that runs each.
	own := map[uint32]statsRecord{}
	var out []ProgramStats
	chains := map[string]map[uint64]ProgramStats{}
	for _, r := range rs {
		if r.State != stateLoaded {
			continue
		}
		if r.Chain == nil {
			if r.ProgramID != 0 {
				own[r.ProgramID] = r
			}
			continue
		}
		if r.ProgramID != 0 {
			skip[r.ProgramID] = true
		}
		counts, ok := chains[r.Hook]
		if !ok {
			counts = m.chainStats(r.Hook)
			chains[r.Hook] = counts
		}
		c := counts[uint64(r.ID)]
		// Alone on its hook a program runs with no dispatcher: the kernel
		// counts it, on top of what chains it was in accounted.
		_, lone := m.loneProgram(r.Hook, r.ID)
		if lone && c.KernelID != 0 {
			skip[c.KernelID] = true
		}
		out = append(out, ProgramStats{ID: r.ID, KernelID: c.KernelID, Name: r.Name, Kind: r.Kind, Hook: r.Hook,
			RunCount: c.RunCount, RunTime: c.RunTime, Accounted: !lone})
	}
	kernel, err := m.kernelStats(ctx, skip, own)
	if err != nil {
		return nil, err
	}
	return append(out, kernel...), nil
}

// statsRecords returns the records as Stats needs them, decoding only
// those stored anew since the last call. The caller holds namesMu.
func (m *Manager) statsRecords() ([]statsRecord, error) {
	var out []statsRecord
	seen := map[string]bool{}
	err := m.store.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPrograms).ForEach(func(k, v []byte) error {
			key := string(k)
			seen[key] = true
			r, ok := m.stats.records[key]
			if !ok || !bytes.Equal(r.raw, v) {
				r = statsRecord{}
				if err := json.Unmarshal(v, &r); err != nil {
					return fmt.Errorf("stored record %x: %w", k, err)
				}
				r.raw = bytes.Clone(v)
				if m.stats.records == nil {
					m.stats.records = map[string]statsRecord{}
				}
				m.stats.records[key] = r
			}
			out = append(out, r)
			return nil
		})
	})
	for key := range m.stats.records {
		if !seen[key] {
			delete(m.stats.records, key)
		}
	}
	return out, err
}

// loneProgram returns the kernel program of id when it runs alone on the
// XDP or TC hook key, with no dispatcher.
func (m *Manager) loneProgram(key string, id ID) (uint32, bool) {
	st := m.hooks.state(key).chainState()
	if st.Mode != dispatcher.ModeDirect || len(st.Slots) != 1 || st.Slots[0].ID != uint64(id) {
		return 0, false
	}
	return uint32(st.Slots[0].ProgramID), true
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

// kernelStats returns the kernel's counts of every program not in skip,
// those in own as bpfd's programs. The caller holds namesMu.
func (m *Manager) kernelStats(ctx context.Context, skip map[uint32]bool, own map[uint32]statsRecord) ([]ProgramStats, error) {
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
		p := ProgramStats{KernelID: uint32(id), Name: n.name, KernelType: n.typ, RunCount: st.RunCount, RunTime: st.Runtime}
		if r, ok := own[uint32(id)]; ok {
			p.ID, p.Name, p.Kind = r.ID, r.Name, r.Kind
		}
		out = append(out, p)
	}
	for id := range m.stats.names {
		if !seen[id] {
			delete(m.stats.names, id)
		}
	}
	return out, nil
}
