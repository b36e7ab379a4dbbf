package dispatcher

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/cilium/ebpf"
)

// A chain built with accounting counts, for each member, how often it ran
// and how long it took (bpf_ktime_get_ns before and after its call), in a
// per-CPU array of one element: the chain's counters. Linked chains generate
// the accounting instructions around each member's call; freplace chains
// run a variant of the dispatcher compiled with them
// (bytecode/dispatcher/*_dispatcher_stats.bpf.c), since the kernel counts
// no runs of extension programs: a trampoline jumps straight into them. A
// chain built without accounting has no accounting instructions at all.

// accountedSlots is the number of counters of a chain (ACCOUNTED_SLOTS in
// bytecode/dispatcher/dispatcher.h): enough for the longest chain.
const accountedSlots = MaxLinkedPrograms

// slotCounter is one member's counter on one CPU (struct slot_counter).
type slotCounter struct {
	Runs  uint64
	Nanos uint64
}

// chainCounters is the counters' value on one CPU (struct chain_counters).
type chainCounters [accountedSlots]slotCounter

// counterOffset is the offset of member i's counter in chainCounters.
func counterOffset(i int) int16 { return int16(i * 16) }

// MemberStats are a member's runs as the chains of its hook accounted them.
type MemberStats struct {
	// ID is the member's ID.
	ID uint64
	// RunCount and RunTime are its runs and the time they took, summed over
	// the CPUs, since its hook's dispatcher first accounted it.
	RunCount uint64
	RunTime  time.Duration
}

// newCounters creates a chain's counters.
func newCounters() (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       "bpfd_chain_stat",
		Type:       ebpf.PerCPUArray,
		KeySize:    4,
		ValueSize:  accountedSlots * 16,
		MaxEntries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("chain counters: %w", err)
	}
	return m, nil
}

// readCounters returns the first n members' counts in m, summed over the
// CPUs.
func readCounters(m *ebpf.Map, n int) ([]slotCounter, error) {
	var perCPU []chainCounters
	if err := m.Lookup(uint32(0), &perCPU); err != nil {
		return nil, fmt.Errorf("read chain counters: %w", err)
	}
	out := make([]slotCounter, min(n, accountedSlots))
	for _, c := range perCPU {
		for i := range out {
			out[i].Runs += c[i].Runs
			out[i].Nanos += c[i].Nanos
		}
	}
	return out, nil
}

// Accounting reports whether the chain accounts its members' runs.
func (c *Chain) Accounting() bool { return c.counters != nil }

// Stats returns each member's runs in this chain, in run order; nil when
// the chain does not account them.
func (c *Chain) Stats() ([]MemberStats, error) {
	if c.counters == nil {
		return nil, nil
	}
	counts, err := readCounters(c.counters, len(c.slots))
	if err != nil {
		return nil, err
	}
	out := make([]MemberStats, len(c.slots))
	for i, s := range c.slots {
		out[i] = MemberStats{ID: s.ID, RunCount: counts[i].Runs, RunTime: time.Duration(counts[i].Nanos)}
	}
	return out, nil
}

// SetAccounting says whether the chains Apply builds from now on account
// their members' runs. It changes nothing on the hook: the caller applies
// the members again for the hook to run a chain that does (or does not),
// swapped in atomically as on any change.
func (d *Dispatcher) SetAccounting(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.accounting = on
}

// Stats returns, for each member of the chain the hook runs, in run order,
// its runs as the dispatcher's chains accounted them since this Dispatcher
// first ran it: the running chain's counts when it accounts, plus what the
// chains it replaced counted. A lone program running directly is counted
// by the kernel (while BPF statistics are on): its kernel statistics count
// as its chain's, both while it runs alone and, once it joins a chain,
// towards its member's counts. A chain adopted by Open counts from when it
// was built. Members never accounted have zero counts.
func (d *Dispatcher) Stats() ([]MemberStats, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur == nil {
		return nil, nil
	}
	var live []slotCounter
	var err error
	switch {
	case d.cur.counters != nil:
		live, err = readCounters(d.cur.counters, len(d.cur.slots))
	case d.cur.mode == ModeDirect:
		live, err = kernelCounts(d.cur)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.hook, err)
	}
	out := make([]MemberStats, len(d.cur.slots))
	for i, s := range d.cur.slots {
		st := d.base[s.ID]
		st.ID = s.ID
		if i < len(live) {
			st.RunCount += live[i].Runs
			st.RunTime += time.Duration(live[i].Nanos)
		}
		out[i] = st
	}
	return out, nil
}

// kernelCounts returns the kernel's statistics of gen's program, a lone
// program running directly, as its one member's counts.
func kernelCounts(gen *generation) ([]slotCounter, error) {
	var prog *ebpf.Program
	if gen.chain != nil && gen.chain.prog != nil {
		prog = gen.chain.prog
	} else {
		p, err := ebpf.NewProgramFromID(gen.programID)
		if err != nil {
			return nil, fmt.Errorf("program %d: %w", gen.programID, err)
		}
		defer p.Close()
		prog = p
	}
	st, err := prog.Stats()
	if err != nil {
		return nil, fmt.Errorf("statistics of program %d: %w", gen.programID, err)
	}
	return []slotCounter{{Runs: st.RunCount, Nanos: uint64(st.Runtime)}}, nil
}

// fold adds what gen, a chain leaving the hook, counted to the members'
// base: its counters, or, while the dispatcher accounts, the kernel's
// statistics of a lone program running directly, whose runs thus carry
// into the chain it joins (and back into the program running alone again,
// which is loaded anew and counts from zero). A failure to read loses those
// counts; it is logged.
func (d *Dispatcher) fold(gen *generation) {
	var counts []slotCounter
	var err error
	switch {
	case gen.counters != nil:
		counts, err = readCounters(gen.counters, len(gen.slots))
		gen.counters.Close()
		gen.counters = nil
	case gen.mode == ModeDirect && len(gen.slots) == 1 && d.accounting:
		counts, err = kernelCounts(gen)
	default:
		return
	}
	if err != nil {
		d.log.Warn("read the counters of a retired chain; its counts are lost", "program_id", gen.programID, "error", err)
		return
	}
	for i, s := range gen.slots {
		st := d.base[s.ID]
		st.ID = s.ID
		st.RunCount += counts[i].Runs
		st.RunTime += time.Duration(counts[i].Nanos)
		d.base[s.ID] = st
	}
}

// pruneBase forgets the counts of members no longer on the hook.
func (d *Dispatcher) pruneBase() {
	for id := range d.base {
		if d.cur == nil || !slices.ContainsFunc(d.cur.slots, func(s Slot) bool { return s.ID == id }) {
			delete(d.base, id)
		}
	}
}

// pinBase pins, beside gen's pins, its members' base, so that a restarted
// Dispatcher adopting gen reports the same counts. Nothing is pinned when
// the base is all zero. A failure loses the base at the next restart only;
// it is logged.
func (d *Dispatcher) pinBase(gen *generation) {
	if gen.dir == "" {
		return
	}
	values := make([]slotCounter, len(gen.slots))
	zero := true
	for i, s := range gen.slots {
		b := d.base[s.ID]
		values[i] = slotCounter{Runs: b.RunCount, Nanos: uint64(b.RunTime)}
		zero = zero && b.RunCount == 0 && b.RunTime == 0
	}
	if zero {
		return
	}
	if err := writeBase(filepath.Join(gen.dir, pinBase), values); err != nil {
		d.log.Warn("pin the members' counts; a restart loses them", "pins", gen.dir, "error", err)
	}
}

// writeBase pins at path an array map of values.
func writeBase(path string, values []slotCounter) error {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       "bpfd_chain_base",
		Type:       ebpf.Array,
		KeySize:    4,
		ValueSize:  16,
		MaxEntries: uint32(len(values)),
	})
	if err != nil {
		return fmt.Errorf("members' counts: %w", err)
	}
	defer m.Close()
	for i, v := range values {
		if err := m.Put(uint32(i), v); err != nil {
			return fmt.Errorf("members' counts: %w", err)
		}
	}
	if err := objPin(m.FD(), path); err != nil {
		return err
	}
	return nil
}

// loadBase reads into the base the members' counts pinned in dir, a
// chain's pins listing slots, if any.
func (d *Dispatcher) loadBase(dir string, slots []Slot) error {
	path := filepath.Join(dir, pinBase)
	m, err := ebpf.LoadPinnedMap(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("members' counts: %w", err)
	}
	defer m.Close()
	if m.ValueSize() != 16 || int(m.MaxEntries()) != len(slots) {
		return fmt.Errorf("members' counts %s: %d entries of %d bytes for %d members: %w", path, m.MaxEntries(), m.ValueSize(), len(slots), ErrInvalid)
	}
	for i, s := range slots {
		var v slotCounter
		if err := m.Lookup(uint32(i), &v); err != nil {
			return fmt.Errorf("members' counts: %w", err)
		}
		d.base[s.ID] = MemberStats{ID: s.ID, RunCount: v.Runs, RunTime: time.Duration(v.Nanos)}
	}
	return nil
}
