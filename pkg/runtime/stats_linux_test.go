package runtime_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

// TestStatsHold holds BPF statistics while three counting programs join a
// chain on a veth's XDP hook and real traffic goes through: each program's
// accounted runs are exactly the packets it counted itself, a program bpfd
// did not load is counted by the kernel, and the programs running the
// chain are not listed. Released, the chain stops accounting; a restart
// leaves no chain accounting.
func TestStatsHold(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode runtime.DispatcherMode) {
		e := newModeEnv(t, mode)
		m := e.open(t)
		v := newVethPair(t)
		ctx := context.Background()

		release, err := m.HoldStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !m.StatsHeld() {
			t.Fatal("StatsHeld() = false while held")
		}
		var members []runtime.Program
		for prio := 1; prio <= 3; prio++ {
			members = append(members, loadOne(t, m, "file:xdp_verdict.bpf.o", "xdp_verdict", progtype.XDP,
				runtime.XDPAttach{Interface: v.Peer, Netns: v.Netns, Priority: prio}, nil))
		}
		other := foreignProgram(t)

		v.SendUDP(t, 20)
		eventually(t, "each program to count the packets", func() bool { return globalU64(t, members[2]) >= 20 })
		const runs = 7
		for range runs {
			if _, err := other.Run(&ebpf.RunOptions{Data: make([]byte, 64)}); err != nil {
				t.Fatal(err)
			}
		}
		// The counts are compared at a moment no packet came between
		// reading the programs' own counts and bpfd's (the veth may carry
		// packets the test did not send).
		var stats map[uint32]runtime.ProgramStats
		eventually(t, "each program's accounted runs to be the packets it counted", func() bool {
			before := counts(t, members)
			stats = statsByID(t, m)
			if after := counts(t, members); !slices.Equal(before, after) {
				return false
			}
			for i, p := range members {
				s, ok := stats[uint32(p.ID)]
				if !ok || !s.Accounted || s.Hook == "" {
					t.Fatalf("program %d: stats %+v, want accounted by its chain", p.ID, s)
				}
				if s.RunCount != before[i] || s.RunTime <= 0 {
					t.Logf("program %d: %d runs in %v accounted, it counted %d packets", p.ID, s.RunCount, s.RunTime, before[i])
					return false
				}
			}
			return true
		})
		otherID := kernelID(t, other)
		if s := stats[otherID+foreignKey]; s.RunCount != runs || s.Name != "foreign" || s.KernelType != "SocketFilter" {
			t.Errorf("program bpfd did not load: %+v, want %d runs of foreign (SocketFilter)", s, runs)
		}
		for _, p := range members {
			got, err := m.Get(ctx, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			// The chain's program in linked mode, the member's
			// extension program in freplace mode.
			if s, ok := stats[got.Kernel.ProgramID+foreignKey]; ok {
				t.Errorf("program %d of the chain is listed as a program of its own: %+v", got.Kernel.ProgramID, s)
			}
			if hook := m.ChainPrograms()[got.Kernel.ProgramID]; hook != got.Hook.Hook {
				t.Errorf("ChainPrograms names the hook of kernel program %d %q, want %q", got.Kernel.ProgramID, hook, got.Hook.Hook)
			}
		}

		// Released: the chain no longer accounts; its counts stay.
		release()
		release() // a second call does nothing
		if m.StatsHeld() {
			t.Fatal("StatsHeld() = true after release")
		}
		before := statsByID(t, m)
		v.SendUDP(t, 20)
		eventually(t, "the programs to count the packets", func() bool { return globalU64(t, members[2]) >= 40 })
		after := statsByID(t, m)
		for _, p := range members {
			if after[uint32(p.ID)].RunCount != before[uint32(p.ID)].RunCount {
				t.Errorf("program %d: accounted runs moved from %d to %d with statistics off", p.ID, before[uint32(p.ID)].RunCount, after[uint32(p.ID)].RunCount)
			}
		}
		if n := counterPins(t, e); n != 0 {
			t.Errorf("%d chains keep counters with statistics off", n)
		}

		// Held when bpfd stops, the chain still accounts; the next Open
		// rebuilds it without.
		if _, err := m.HoldStats(ctx); err != nil {
			t.Fatal(err)
		}
		if n := counterPins(t, e); n != 1 {
			t.Fatalf("%d chains with counters while statistics are held, want 1", n)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		m = e.open(t)
		if n := counterPins(t, e); n != 0 {
			t.Errorf("%d chains keep counters after a restart", n)
		}
		if m.StatsHeld() {
			t.Error("StatsHeld() = true after a restart")
		}
	})
}

// foreignKey sets apart, in statsByID, the kernel ids of programs bpfd did
// not load from bpfd's ids.
const foreignKey = 1 << 31

// statsByID returns m.Stats by bpfd id, and by kernel id + foreignKey for
// programs bpfd did not load.
func statsByID(t *testing.T, m *runtime.Manager) map[uint32]runtime.ProgramStats {
	t.Helper()
	stats, err := m.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint32]runtime.ProgramStats{}
	for _, s := range stats {
		if s.ID != 0 {
			out[uint32(s.ID)] = s
		} else {
			out[s.KernelID+foreignKey] = s
		}
	}
	return out
}

// foreignProgram loads a socket filter outside bpfd until the test ends.
func foreignProgram(t *testing.T) *ebpf.Program {
	t.Helper()
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "foreign", Type: ebpf.SocketFilter, License: "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func kernelID(t *testing.T, p *ebpf.Program) uint32 {
	t.Helper()
	info, err := p.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := info.ID()
	return uint32(id)
}

// counterPins counts the chains pinned with counters under the env's
// dispatchers.
func counterPins(t *testing.T, e *env) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(e.bpffs, "dispatchers"), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == "counters" {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// counts reads the packets each program counted itself.
func counts(t *testing.T, ps []runtime.Program) []uint64 {
	t.Helper()
	out := make([]uint64, len(ps))
	for i, p := range ps {
		out[i] = globalU64(t, p)
	}
	return out
}

// TestStatsLoneProgramJoinsChain holds BPF statistics while a program runs
// alone on a veth's XDP hook (with no dispatcher, counted by the kernel),
// then joins a chain, then runs alone again, then across a restart: at
// each step its reported runs are all the packets it counted itself, those
// of the earlier steps included.
func TestStatsLoneProgramJoinsChain(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode runtime.DispatcherMode) {
		e := newModeEnv(t, mode)
		m := e.open(t)
		v := newVethPair(t)
		ctx := context.Background()
		release, err := m.HoldStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { release() }()
		attach := func(prio int) runtime.AttachSpec {
			return runtime.XDPAttach{Interface: v.Peer, Netns: v.Netns, Priority: prio}
		}
		first := loadOne(t, m, "file:xdp_verdict.bpf.o", "xdp_verdict", progtype.XDP, attach(1), nil)
		checkRuns := func(step string, wantAccounted bool, sent uint64) {
			t.Helper()
			v.SendUDP(t, 10)
			eventually(t, step+": the program to count the packets", func() bool { return globalU64(t, first) >= sent })
			eventually(t, step+": its runs to be the packets it counted", func() bool {
				before := globalU64(t, first)
				s, ok := statsByID(t, m)[uint32(first.ID)]
				if globalU64(t, first) != before {
					return false
				}
				if !ok || s.Accounted != wantAccounted || s.Hook == "" {
					t.Fatalf("%s: stats %+v, want accounted %v on its hook", step, s, wantAccounted)
				}
				if s.RunCount != before {
					t.Logf("%s: %d runs reported, it counted %d packets", step, s.RunCount, before)
					return false
				}
				return true
			})
		}
		checkRuns("alone", false, 10)

		second := loadOne(t, m, "file:xdp_verdict.bpf.o", "xdp_verdict", progtype.XDP, attach(2), nil)
		checkRuns("in a chain", true, 20)

		if err := m.Unload(ctx, second.ID); err != nil {
			t.Fatal(err)
		}
		checkRuns("alone again", false, 30)

		// bpfd stops and starts again: the runs counted so far stay. The
		// test keeps the kernel's statistics on meanwhile: the packets the
		// veth may carry while bpfd is down are counted.
		kernelStats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
		if err != nil {
			t.Fatal(err)
		}
		defer kernelStats.Close()
		release()
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		m = e.open(t)
		if release, err = m.HoldStats(ctx); err != nil {
			t.Fatal(err)
		}
		checkRuns("alone after a restart", false, 40)
		second = loadOne(t, m, "file:xdp_verdict.bpf.o", "xdp_verdict", progtype.XDP, attach(2), nil)
		checkRuns("in a chain after a restart", true, 50)
	})
}
