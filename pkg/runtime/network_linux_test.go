package runtime_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

const udp = 17 // the counters' key for UDP packets

func TestTCCountsPackets(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	v := newVethPair(t)
	ctx := context.Background()

	progs, err := load(ctx, m, "file:tc_counter.bpf.o", runtime.LoadRequest{
		Programs: []runtime.ProgramRequest{{
			Name:   "tc_counter",
			Kind:   progtype.TC,
			Attach: runtime.TCAttach{Interface: v.Peer, Netns: v.Netns, Direction: runtime.Ingress, Priority: 7},
		}},
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	p := progs[0]
	assertChain(t, e, m, p)
	if p.Hook == nil || p.Hook.Priority != 7 || p.Hook.Position != 0 {
		t.Errorf("hook position %+v, want priority 7 at position 0", p.Hook)
	}
	v.SendUDP(t, 25)
	pin := mapPin(t, p, "tc_stats")
	eventually(t, "25 UDP packets counted", func() bool { return testutil.ReadU64(t, pin, udp) >= 25 })

	if err := m.Unload(ctx, p.ID); err != nil {
		t.Fatalf("Unload: %v", err)
	}
	assertEmpty(t, e, m)
	assertNoAttachments(t, v)
}

func TestTCXCountsPackets(t *testing.T) {
	testutil.RequireKernelFeature(t, testutil.FeatureTCX)
	e := newEnv(t)
	m := e.open(t)
	v := newVethPair(t)
	ctx := context.Background()

	// The host end, in bpfd's own namespace, on egress.
	progs, err := load(ctx, m, "file:tc_counter.bpf.o", runtime.LoadRequest{
		Programs: []runtime.ProgramRequest{{
			Name:   "tcx_counter",
			Kind:   progtype.TCX,
			Attach: runtime.TCXAttach{Interface: v.Host, Direction: runtime.Egress},
		}},
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	p := progs[0]
	if got := tcxProgIDs(t, v.Host, "", runtime.Egress); !slices.Equal(got, []uint32{p.Kernel.ProgramID}) {
		t.Fatalf("tcx egress runs programs %v, want [%d]", got, p.Kernel.ProgramID)
	}
	if len(p.Kernel.LinkIDs) != 1 || p.Kernel.LinkIDs[0] == 0 {
		t.Errorf("link ids %v, want one", p.Kernel.LinkIDs)
	}
	v.SendUDP(t, 25)
	pin := mapPin(t, p, "tc_stats")
	eventually(t, "25 UDP packets counted", func() bool { return testutil.ReadU64(t, pin, udp) >= 25 })

	if err := m.Unload(ctx, p.ID); err != nil {
		t.Fatalf("Unload: %v", err)
	}
	if got := tcxProgIDs(t, v.Host, "", runtime.Egress); len(got) != 0 {
		t.Fatalf("tcx programs left after unload: %v", got)
	}
	assertEmpty(t, e, m)
}

// TestTCXUnsupported checks, on a kernel without TCX (before 6.6), that a
// tcx load fails as unsupported and leaves nothing.
func TestTCXUnsupported(t *testing.T) {
	testutil.RequirePrivileged(t)
	if testutil.KernelHas(testutil.FeatureTCX) == nil {
		t.Skip("this kernel has TCX")
	}
	e := newEnv(t)
	m := e.open(t)
	v := newVethPair(t)
	fds := openFDs(t)
	_, err := load(context.Background(), m, "file:tc_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
		{Name: "tcx_counter", Kind: progtype.TCX, Attach: runtime.TCXAttach{Interface: v.Host, Direction: runtime.Egress}}}})
	assertErr(t, err, runtime.ErrUnsupported, "program tcx_counter: attach tcx to interface "+v.Host+" egress")
	t.Logf("error: %v", err)
	assertOnly(t, e, m, fds)
	assertNoAttachments(t, v)
}

// TestSharedMaps loads two programs of one object in one request (they share
// its map), then a third from another load that names the first as its map
// owner.
func TestSharedMaps(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	v := newVethPair(t)
	ctx := context.Background()

	progs, err := load(ctx, m, "file:packet_counters.bpf.o", runtime.LoadRequest{
		Programs: []runtime.ProgramRequest{
			{Name: "xdp_ingress_counter", Kind: progtype.XDP, Attach: runtime.XDPAttach{Interface: v.Peer, Netns: v.Netns}},
			{Name: "tc_egress_counter", Kind: progtype.TC, Attach: runtime.TCAttach{Interface: v.Host, Direction: runtime.Egress}},
		},
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	xdp, tc := progs[0], progs[1]
	if tc.MapOwnerID != xdp.ID {
		t.Errorf("tc program's map owner = %d, want %d", tc.MapOwnerID, xdp.ID)
	}
	if a, b := xdp.Maps[0].ID, tc.Maps[0].ID; a != b {
		t.Fatalf("programs of one object use maps %d and %d, want one", a, b)
	}
	v.SendUDP(t, 10)
	pin := mapPin(t, tc, "packet_stats")
	eventually(t, "10 packets seen by XDP on ingress and TC on egress", func() bool {
		return testutil.ReadU64(t, pin, 0) >= 10 && testutil.ReadU64(t, pin, 1) >= 10
	})

	// A separate load sharing the first program's map: on TCX, or where the
	// kernel has none as a second tc filter.
	sharer := runtime.ProgramRequest{Name: "tc_egress_counter", Kind: progtype.TCX, Attach: runtime.TCXAttach{Interface: v.Host, Direction: runtime.Egress}}
	if !kernelHasTCX(t) {
		sharer = runtime.ProgramRequest{Name: "tc_egress_counter", Kind: progtype.TC, Attach: runtime.TCAttach{Interface: v.Host, Direction: runtime.Egress}}
	}
	third, err := load(ctx, m, "file:packet_counters.bpf.o", runtime.LoadRequest{
		Programs:   []runtime.ProgramRequest{sharer},
		MapOwnerID: xdp.ID,
	})
	if err != nil {
		t.Fatalf("Load with map owner: %v", err)
	}
	if got, want := third[0].Maps[0].ID, xdp.Maps[0].ID; got != want {
		t.Fatalf("map owner's map %d not reused: got %d", want, got)
	}
	// Unloading the owner leaves the sharer's map in place.
	if err := m.Unload(ctx, xdp.ID); err != nil {
		t.Fatal(err)
	}
	before := testutil.ReadU64(t, third[0].Maps[0].PinPath, 1)
	v.SendUDP(t, 5)
	// tc_egress_counter returns TC_ACT_OK, which ends the egress hook: as a
	// TCX verdict (TCX_PASS) before the tc filters run, and among tc filters
	// of one priority the newest runs first. Only the sharer counts.
	eventually(t, "the sharer to keep counting after its owner went", func() bool {
		return testutil.ReadU64(t, third[0].Maps[0].PinPath, 1) >= before+5
	})
	if err := m.Unload(ctx, tc.ID, third[0].ID); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, e, m)
}

// TestTCPriorityOrder checks that TC programs run by priority, equal
// priorities in load order, and that Get reports those positions: all
// count, as tc_counter returns TC_ACT_OK, on which the next program runs.
func TestTCPriorityOrder(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	v := newVethPair(t)
	ctx := context.Background()
	var progs []runtime.Program
	for _, prio := range []int{10, 5, 5} {
		progs = append(progs, loadOne(t, m, "file:tc_counter.bpf.o", "tc_counter", progtype.TC,
			runtime.TCAttach{Interface: v.Peer, Netns: v.Netns, Direction: runtime.Ingress, Priority: prio}, nil))
	}
	assertChain(t, e, m, progs[1], progs[2], progs[0])
	v.SendUDP(t, 10)
	for _, p := range progs {
		eventually(t, fmt.Sprintf("program %d to count", p.ID), func() bool { return udpCount(t, p) == 10 })
	}
	if err := m.Unload(ctx, progs[0].ID, progs[1].ID, progs[2].ID); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, e, m)
}

// TestMapOwnerSharesGlobals loads xdp_verdict twice, the second with the
// first as map owner and its own verdict: they share .bss (the packet
// count) but not .rodata (the verdict).
func TestMapOwnerSharesGlobals(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	v := newVethPair(t)
	ctx := context.Background()
	req := func(ifname, netns string, owner runtime.ID, verdict byte) fileLoad {
		return fileLoad{"file:xdp_verdict.bpf.o", runtime.LoadRequest{
			Programs:   []runtime.ProgramRequest{{Name: "xdp_verdict", Kind: progtype.XDP, Attach: runtime.XDPAttach{Interface: ifname, Netns: netns}}},
			Globals:    map[string][]byte{"verdict": {verdict, 0, 0, 0}},
			MapOwnerID: owner,
		}}
	}
	r := req(v.Host, "", 0, 2) // XDP_PASS
	first, err := load(ctx, m, r.ref, r.req)
	if err != nil {
		t.Fatal(err)
	}
	r = req(v.Peer, v.Netns, first[0].ID, 2)
	second, err := load(ctx, m, r.ref, r.req)
	if err != nil {
		t.Fatalf("Load with map owner: %v", err)
	}
	ids := func(p runtime.Program) map[string]uint32 {
		out := map[string]uint32{}
		for _, mp := range p.Maps {
			out[mp.Name] = mp.ID
		}
		return out
	}
	a, b := ids(first[0]), ids(second[0])
	if a[".bss"] != b[".bss"] {
		t.Errorf(".bss not shared: %d and %d", a[".bss"], b[".bss"])
	}
	if a[".rodata"] == b[".rodata"] {
		t.Errorf(".rodata %d shared, want each program's own", a[".rodata"])
	}
	v.SendUDP(t, 10)
	eventually(t, "the peer's program to count into the owner's .bss", func() bool {
		return testutil.ReadU64(t, mapPin(t, first[0], ".bss"), 0) >= 10
	})
	if err := m.Unload(ctx, first[0].ID, second[0].ID); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, e, m)
}
