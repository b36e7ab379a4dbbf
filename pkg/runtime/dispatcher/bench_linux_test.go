package dispatcher_test

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// BenchmarkChain measures, with BPF_PROG_TEST_RUN (repeat 1,000,000, a
// 64-byte packet, the kernel's timing), the per-packet cost of chains of 1, 5 and 10 xdp_verdict
// programs in each mode the kernel has, against the same programs run
// directly one after the other, and against an empty program (what one
// BPF_PROG_TEST_RUN run costs by itself). `go run ./bench -rows dispatcher`
// reports the same on the host; freplace mode needs the VM:
//
//	CGO_ENABLED=0 BPFD_REQUIRE_KERNEL=debian-6.1 go test -exec "$PWD/hack/vm/vmrun.sh" \
//		-run '^$' -bench Chain -benchtime 5x ./pkg/runtime/dispatcher
func BenchmarkChain(b *testing.B) {
	testutil.RequirePrivileged(b)
	modes := []dispatcher.Mode{dispatcher.ModeLinked}
	if dispatcher.ProbeFreplace() == nil {
		modes = []dispatcher.Mode{dispatcher.ModeFreplace, dispatcher.ModeLinked}
	}
	nop, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL", Instructions: asm.Instructions{
		asm.Mov.Imm(asm.R0, xdpPass), asm.Return(),
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer nop.Close()
	for _, mode := range modes {
		for _, n := range []int{1, 5, 10} {
			b.Run(fmt.Sprintf("%s/%d", mode, n), func(b *testing.B) {
				var members []dispatcher.Member
				var direct []*ebpf.Program
				for i := range n {
					m := member(b, progtype.XDP, uint64(i+1), i+1, program{object: "xdp_verdict", name: "xdp_verdict"})
					members = append(members, m)
					direct = append(direct, standalone(b, m))
				}
				c, err := dispatcher.Build(progtype.XDP, mode, members)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				accounted, err := dispatcher.BuildWithOptions(progtype.XDP, mode, members, dispatcher.BuildOptions{Accounting: true})
				if err != nil {
					b.Fatal(err)
				}
				defer accounted.Close()
				var chain, withStats, programs, empty float64
				iterations := 0
				for b.Loop() {
					chain += perPacket(b, c.Program())
					withStats += perPacket(b, accounted.Program())
					for _, p := range direct {
						programs += perPacket(b, p)
					}
					empty += perPacket(b, nop)
					iterations++
				}
				per := func(ns float64) float64 { return ns / float64(iterations) }
				b.ReportMetric(per(chain), "chain-ns/pkt")
				b.ReportMetric(per(withStats), "stats-on-ns/pkt")
				b.ReportMetric(per(programs), "direct-ns/pkt")
				b.ReportMetric(per(chain)/per(programs), "ratio")
				b.ReportMetric(per(empty), "empty-ns/pkt")
			})
		}
	}
}

// perPacket runs p 1,000,000 times on a 64-byte packet and returns the time
// per run in nanoseconds, as the kernel measured it (without the time the
// benchmark was scheduled out).
func perPacket(b *testing.B, p *ebpf.Program) float64 {
	b.Helper()
	ret, d, err := p.Benchmark(make([]byte, 64), 1_000_000, nil)
	if err != nil {
		b.Fatal(err)
	}
	if ret != xdpPass {
		b.Fatalf("returned %d, want XDP_PASS", ret)
	}
	return float64(d)
}

// standalone loads m's program on its own, bound to m's maps, until the
// test ends.
func standalone(t testing.TB, m dispatcher.Member) *ebpf.Program {
	t.Helper()
	p := m.Program.Copy()
	for i := range p.Instructions {
		ins := &p.Instructions[i]
		if ins.IsLoadFromMap() && ins.Reference() != "" {
			if err := ins.AssociateMap(m.Maps[ins.Reference()]); err != nil {
				t.Fatal(err)
			}
		}
	}
	prog, err := ebpf.NewProgram(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog
}
