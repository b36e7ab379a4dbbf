package dispatcher

import (
	"fmt"
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
// chains it replaced counted. A chain adopted by Open counts from when it
// was built. Members never accounted have zero counts.
func (d *Dispatcher) Stats() ([]MemberStats, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur == nil {
		return nil, nil
	}
	var live []slotCounter
	if d.cur.counters != nil {
		var err error
		if live, err = readCounters(d.cur.counters, len(d.cur.slots)); err != nil {
			return nil, fmt.Errorf("%s: %w", d.hook, err)
		}
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

// fold adds what gen, a chain leaving the hook, counted to the members'
// base. A failure to read loses that chain's counts; it is logged.
func (d *Dispatcher) fold(gen *generation) {
	if gen.counters == nil {
		return
	}
	counts, err := readCounters(gen.counters, len(gen.slots))
	gen.counters.Close()
	gen.counters = nil
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
