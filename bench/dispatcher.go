package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// testRunRepeat is how many times one BPF_PROG_TEST_RUN runs a program.
const testRunRepeat = 1_000_000

// dispatcherRows measures the per-packet cost of chains of 1, 5 and 10 trivial
// XDP programs (xdp_verdict: count the packet in .bss, pass it) through the
// dispatcher, in each mode this kernel runs, against the same programs run
// one after the other, each on its own: BPF_PROG_TEST_RUN with a repeat of
// 1,000,000 on a 64-byte packet, as the kernel times the runs (to the
// nanosecond, without the time the benchmark was scheduled out). Each run of a
// program has a cost of its own, which the first row measures with an empty
// program: the programs run directly pay it once each, a chain once. Then
// what per-member accounting (bpfctl top, stats on) adds: the same chains
// built with and without it.
func dispatcherRows(_ context.Context, env *Env) (_ []Row, _ func(), err error) {
	modes := []dispatcher.Mode{dispatcher.ModeLinked}
	if dispatcher.ProbeFreplace() == nil {
		modes = []dispatcher.Mode{dispatcher.ModeFreplace, dispatcher.ModeLinked}
	}
	var closers []func() error
	cleanup := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()

	spec, err := ebpf.LoadCollectionSpec(filepath.Join(env.Root, "bytecode", "xdp_verdict.bpf.o"))
	if err != nil {
		return nil, nil, err
	}
	const most = 10
	var members []dispatcher.Member
	var direct []*ebpf.Program
	for i := range most {
		s := spec.Copy()
		maps, err := ebpf.NewCollection(&ebpf.CollectionSpec{Maps: s.Maps, Variables: s.Variables, Types: s.Types, ByteOrder: s.ByteOrder})
		if err != nil {
			return nil, nil, fmt.Errorf("xdp_verdict maps: %w", err)
		}
		closers = append(closers, func() error { maps.Close(); return nil })
		m := dispatcher.Member{
			ID: uint64(i + 1), Name: "xdp_verdict", Priority: i + 1, ProceedOn: dispatcher.DefaultProceedOn(progtype.XDP),
			Program: s.Programs["xdp_verdict"], Maps: maps.Maps,
		}
		members = append(members, m)
		p, err := standalone(m)
		if err != nil {
			return nil, nil, err
		}
		closers = append(closers, p.Close)
		direct = append(direct, p)
	}

	nop, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL", Instructions: asm.Instructions{
		asm.Mov.Imm(asm.R0, 2), asm.Return(), // XDP_PASS
	}})
	if err != nil {
		return nil, nil, fmt.Errorf("empty program: %w", err)
	}
	closers = append(closers, nop.Close)
	rows := []Row{{
		Name: "dispatcher: BPF_PROG_TEST_RUN of an empty program, per packet",
		Ours: Side{Name: "return XDP_PASS (the run's own cost)", Measure: perPacket(nop)},
	}}
	// A lone program runs with no dispatcher: the chain bpfd builds for one
	// program is the program itself, in either mode.
	lone, err := dispatcher.Build(progtype.XDP, dispatcher.ChainMode(modes[0], 1), members[:1])
	if err != nil {
		return nil, nil, fmt.Errorf("chain of a lone program: %w", err)
	}
	closers = append(closers, lone.Close)
	rows = append(rows, Row{
		Name: "dispatcher: 1 xdp program alone on its hook, per packet",
		Ours: Side{Name: "the program as bpfd attaches it (BPF_PROG_TEST_RUN)", Measure: perPacket(lone.Program())},
		Peer: &Side{Name: "the program loaded on its own", Measure: perPacket(direct[0])},
	})
	for _, mode := range modes {
		for _, n := range []int{1, 5, 10} {
			c, err := dispatcher.Build(progtype.XDP, mode, members[:n])
			if err != nil {
				return nil, nil, fmt.Errorf("%s chain of %d: %w", mode, n, err)
			}
			closers = append(closers, c.Close)
			progs := direct[:n]
			rows = append(rows, Row{
				Name: fmt.Sprintf("dispatcher %s: chain of %s, per packet", mode, xdpPrograms(n)),
				Ours: Side{Name: fmt.Sprintf("%s chain (BPF_PROG_TEST_RUN)", mode), Measure: perPacket(c.Program())},
				Peer: &Side{Name: fmt.Sprintf("the %s run directly", xdpPrograms(n)), Measure: perPacket(progs...)},
			})
		}
	}
	// What the kernel's own statistics (BPF_ENABLE_STATS: two clock reads
	// around every program run) add to one program's run, for comparison.
	rows = append(rows, Row{
		Name: "dispatcher: the kernel's BPF statistics, 1 xdp program, per packet",
		Ours: Side{Name: "BPF_ENABLE_STATS held", Measure: func(ctx context.Context) (time.Duration, error) {
			stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
			if err != nil {
				return 0, fmt.Errorf("enable BPF statistics: %w", err)
			}
			defer stats.Close()
			return perPacket(direct[0])(ctx)
		}},
		Peer: &Side{Name: "statistics off", Measure: perPacket(direct[0])},
	})
	for _, mode := range modes {
		for _, n := range []int{1, 10} {
			off, err := dispatcher.Build(progtype.XDP, mode, members[:n])
			if err != nil {
				return nil, nil, fmt.Errorf("%s chain of %d: %w", mode, n, err)
			}
			closers = append(closers, off.Close)
			on, err := dispatcher.BuildWithOptions(progtype.XDP, mode, members[:n], dispatcher.BuildOptions{Accounting: true})
			if err != nil {
				return nil, nil, fmt.Errorf("%s chain of %d with accounting: %w", mode, n, err)
			}
			closers = append(closers, on.Close)
			rows = append(rows, Row{
				Name: fmt.Sprintf("dispatcher %s: per-member accounting, chain of %s, per packet", mode, xdpPrograms(n)),
				Ours: Side{Name: "stats on: each member timed and counted", Measure: perPacket(on.Program())},
				Peer: &Side{Name: "stats off: the chain without accounting", Measure: perPacket(off.Program())},
			})
		}
	}
	return rows, cleanup, nil
}

func xdpPrograms(n int) string {
	if n == 1 {
		return "1 xdp program"
	}
	return fmt.Sprintf("%d xdp programs", n)
}

// standalone loads m's program on its own, bound to m's maps.
func standalone(m dispatcher.Member) (*ebpf.Program, error) {
	p := m.Program.Copy()
	for i := range p.Instructions {
		ins := &p.Instructions[i]
		if ins.IsLoadFromMap() && ins.Reference() != "" {
			if err := ins.AssociateMap(m.Maps[ins.Reference()]); err != nil {
				return nil, err
			}
		}
	}
	return ebpf.NewProgram(p)
}

// benchPacket is a 64-byte frame; the programs do not look into it.
var benchPacket = make([]byte, 64)

// perPacket returns a measurement of progs run one after the other: each is
// run testRunRepeat times by one BPF_PROG_TEST_RUN on benchPacket, must pass
// it, and the times per run the kernel reports are added up.
func perPacket(progs ...*ebpf.Program) func(context.Context) (time.Duration, error) {
	return func(context.Context) (time.Duration, error) {
		const xdpPass = 2
		var total time.Duration
		for _, p := range progs {
			ret, d, err := p.Benchmark(benchPacket, testRunRepeat, nil)
			if err != nil {
				return 0, err
			}
			if ret != xdpPass {
				return 0, errors.New("the packet was not passed")
			}
			total += d
		}
		return total, nil
	}
}
