package runtime_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

// benchEnv is newEnv for benchmarks.
func benchEnv(b *testing.B) (*env, *runtime.Manager) {
	b.Helper()
	e := newEnv(b)
	m, err := runtime.Open(context.Background(), runtime.Options{StateDir: e.stateDir, BPFFS: e.bpffs})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return e, m
}

// BenchmarkLoadUnload measures a load (verify, attach, pin, record) and an
// unload of one program, from bytecode already in memory.
func BenchmarkLoadUnload(b *testing.B) {
	_, m := benchEnv(b)
	v := newVethPair(b)
	ctx := context.Background()
	cases := map[string]fileLoad{
		"xdp": {"file:xdp_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
			{Name: "xdp_counter", Kind: progtype.XDP, Attach: runtime.XDPAttach{Interface: v.Peer, Netns: v.Netns}}}}},
		"tcx": {"file:tc_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
			{Name: "tcx_counter", Kind: progtype.TCX, Attach: runtime.TCXAttach{Interface: v.Host, Direction: runtime.Ingress}}}}},
		"tc": {"file:tc_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
			{Name: "tc_counter", Kind: progtype.TC, Attach: runtime.TCAttach{Interface: v.Host, Direction: runtime.Ingress}}}}},
		"tracepoint": {"file:tracepoint_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
			{Name: "tracepoint_counter", Kind: progtype.Tracepoint, Attach: runtime.TracepointAttach{Tracepoint: "syscalls/sys_enter_getpid"}}}}},
	}
	for _, name := range []string{"xdp", "tc", "tcx", "tracepoint"} {
		req := cases[name]
		b.Run(name, func(b *testing.B) {
			if name == "tcx" {
				testutil.RequireKernelFeature(b, testutil.FeatureTCX)
			}
			for b.Loop() {
				progs, err := load(ctx, m, req.ref, req.req)
				if err != nil {
					b.Fatal(err)
				}
				if err := m.Unload(ctx, progs[0].ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkList measures List and Get with 1, 100 and 1000 programs loaded:
// TC programs on a veth without traffic, as the kernel allows 64 per
// tracepoint, cgroup or TCX hook.
func BenchmarkList(b *testing.B) {
	_, m := benchEnv(b)
	v := newVethPair(b)
	ctx := context.Background()
	req := fileLoad{"file:tc_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
		{Name: "tc_counter", Kind: progtype.TC, Attach: runtime.TCAttach{Interface: v.Host, Direction: runtime.Egress}}}}}
	var ids []runtime.ID
	b.Cleanup(func() { m.Unload(ctx, ids...) })
	for _, n := range []int{1, 100, 1000} {
		for len(ids) < n {
			progs, err := load(ctx, m, req.ref, req.req)
			if err != nil {
				b.Fatal(err)
			}
			ids = append(ids, progs[0].ID)
		}
		b.Run(fmt.Sprintf("list/%d", n), func(b *testing.B) {
			for b.Loop() {
				progs, err := m.List(ctx, runtime.ListOptions{})
				if err != nil || len(progs) != n {
					b.Fatalf("List: %d programs, %v", len(progs), err)
				}
			}
		})
		b.Run(fmt.Sprintf("get/%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := m.Get(ctx, ids[len(ids)/2]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
