package dispatcher_test

import (
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// workMember is bytecode's xdp_work doing rounds of work per packet and,
// with dropOdd, dropping the packets whose first byte is odd.
func workMember(t *testing.T, id uint64, rounds uint32, dropOdd bool) dispatcher.Member {
	t.Helper()
	drop := uint32(0)
	if dropOdd {
		drop = 1
	}
	m := member(t, progtype.XDP, id, int(id), program{object: "xdp_work", name: "xdp_work",
		globals: map[string]any{"rounds": rounds, "drop_odd": drop}})
	return m
}

// TestChainAccountsEachMember chains three programs doing 10, 100 and 1000
// rounds of work, the second dropping the packets whose first byte is odd,
// and runs the chain on packets with BPF_PROG_TEST_RUN: each member's
// accounted runs are the packets it saw, and its time per run grows with
// its work. The times are wall-clock (bpf_ktime_get_ns): a CPU taken away
// mid-run (a loaded host under a VM) lands in one member's time, so the
// order of the times gets up to five chains to show; the run counts must
// be exact every time.
func TestChainAccountsEachMember(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode dispatcher.Mode) {
		const attempts = 5
		var perRuns []float64
		for attempt := 1; attempt <= attempts; attempt++ {
			stats := runAccountedChain(t, mode)
			perRuns = perRuns[:0]
			for _, s := range stats {
				perRuns = append(perRuns, perRun(s))
			}
			if growing(perRuns) {
				t.Logf("%s: ns per run %.0f (attempt %d)", mode, perRuns, attempt)
				return
			}
			t.Logf("%s: attempt %d: ns per run %.0f, not growing with the work", mode, attempt, perRuns)
		}
		t.Errorf("%s: in %d chains, the members' times per run never grew with their work (10, 100, 1000 rounds); last %.0f ns", mode, attempts, perRuns)
	})
}

// growing reports whether every value is greater than the one before.
func growing(v []float64) bool {
	for i := 1; i < len(v); i++ {
		if v[i] <= v[i-1] {
			return false
		}
	}
	return true
}

// runAccountedChain builds the chain of TestChainAccountsEachMember, runs
// it and returns its members' stats, checking their run counts.
func runAccountedChain(t *testing.T, mode dispatcher.Mode) []dispatcher.MemberStats {
	t.Helper()
	members := []dispatcher.Member{
		workMember(t, 1, 10, false),
		workMember(t, 2, 100, true),
		workMember(t, 3, 1000, false),
	}
	c, err := dispatcher.BuildWithOptions(progtype.XDP, mode, members, dispatcher.BuildOptions{Accounting: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Accounting() {
		t.Fatal("Accounting() = false for a chain built with accounting")
	}
	const odd, even = 300, 500
	for _, run := range []struct {
		first  byte
		repeat uint32
		want   uint32
	}{{1, odd, xdpDrop}, {2, even, xdpPass}} {
		pkt := make([]byte, 64)
		pkt[0] = run.first
		ret, err := c.Program().Run(&ebpf.RunOptions{Data: pkt, Repeat: run.repeat})
		if err != nil {
			t.Fatal(err)
		}
		if ret != run.want {
			t.Fatalf("packet starting with %d: verdict %d, want %d", run.first, ret, run.want)
		}
	}
	stats, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := []uint64{odd + even, odd + even, even}
	if got := runCounts(stats); !cmp.Equal(got, want) {
		t.Fatalf("run counts %v, want %v (stats %+v)", got, want, stats)
	}
	return stats
}

// TestChainWithoutAccounting builds chains without accounting: they have
// no counters (the dispatcher program uses no per-CPU map) and report no
// stats.
func TestChainWithoutAccounting(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode dispatcher.Mode) {
		c, err := dispatcher.Build(progtype.XDP, mode, []dispatcher.Member{workMember(t, 1, 10, false)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if c.Accounting() {
			t.Error("Accounting() = true for a chain built without")
		}
		if stats, err := c.Stats(); stats != nil || err != nil {
			t.Errorf("Stats() = %v, %v; want nothing", stats, err)
		}
		info, err := c.Program().Info()
		if err != nil {
			t.Fatal(err)
		}
		ids, _ := info.MapIDs()
		for _, id := range ids {
			m, err := ebpf.NewMapFromID(id)
			if err != nil {
				t.Fatal(err)
			}
			if m.Type() == ebpf.PerCPUArray {
				t.Errorf("the chain program uses per-CPU map %d", id)
			}
			m.Close()
		}
	})
}

// TestDispatcherAccounting turns accounting on and off on a hook with real
// traffic: a chain's counts carry over into the chains that replace it, a
// chain without accounting adds nothing, and a restarted dispatcher adopts
// a pinned chain's counters and the counts of the chains before it.
func TestDispatcherAccounting(t *testing.T) {
	forEachHook(t, func(t *testing.T, ct *chainTest, opts dispatcher.Options) {
		opts.PinDir = filepath.Join(newBPFFS(t), "hook")
		d, err := dispatcher.Open(ct.hook, opts)
		if err != nil {
			t.Fatal(err)
		}
		stop := ct.proceedOn(t, ct.stop, ct.stopProceeds...)
		apply(t, d, opts.Mode, ct.first, ct.stop, ct.last)
		ct.sendAndExpect(t, 10, [3]uint64{10, 10, 0})
		checkStats(t, d, false, []uint64{0, 0, 0})

		d.SetAccounting(true)
		apply(t, d, opts.Mode, ct.first, ct.stop, ct.last)
		ct.sendAndExpect(t, 10, [3]uint64{20, 20, 0})
		checkStats(t, d, true, []uint64{10, 10, 0})

		// A rebuild keeps the counts of the members that stay.
		apply(t, d, opts.Mode, ct.first, stop, ct.last)
		ct.sendAndExpect(t, 10, [3]uint64{30, 30, 10})
		checkStats(t, d, true, []uint64{20, 20, 10})

		// A restarted dispatcher reads the pinned chain's counters, which
		// counted through the restart, and the counts of the chains
		// before it, pinned beside.
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		ct.sendAndExpect(t, 10, [3]uint64{40, 40, 20})
		d = ct.open(t, opts)
		checkStats(t, d, true, []uint64{30, 30, 20})

		// Without accounting the counts stay.
		d.SetAccounting(false)
		apply(t, d, opts.Mode, ct.first, stop, ct.last)
		ct.sendAndExpect(t, 10, [3]uint64{50, 50, 30})
		checkStats(t, d, false, []uint64{30, 30, 20})
		for _, p := range pins(t, opts.PinDir) {
			if filepath.Base(p) == "counters" {
				t.Errorf("pin %s of a chain without accounting", p)
			}
		}
		if err := d.Apply(nil); err != nil {
			t.Fatal(err)
		}
	})
}

// checkStats checks whether the dispatcher's chain accounts and the run
// counts it reports.
func checkStats(t *testing.T, d *dispatcher.Dispatcher, accounting bool, want []uint64) {
	t.Helper()
	if got := d.State().Accounting; got != accounting {
		t.Errorf("State().Accounting = %v, want %v", got, accounting)
	}
	stats, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, runCounts(stats), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("run counts (-want +got):\n%s", diff)
	}
	for _, s := range stats {
		if (s.RunCount == 0) != (s.RunTime == 0) {
			t.Errorf("member %d: %d runs in %v", s.ID, s.RunCount, s.RunTime)
		}
	}
}

func runCounts(stats []dispatcher.MemberStats) []uint64 {
	out := make([]uint64, len(stats))
	for i, s := range stats {
		out[i] = s.RunCount
	}
	return out
}

func perRun(s dispatcher.MemberStats) float64 {
	if s.RunCount == 0 {
		return 0
	}
	return float64(s.RunTime.Nanoseconds()) / float64(s.RunCount)
}
