package runtime_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vishvananda/netlink"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

// TestRestartAdoptsPrograms closes a Manager without unloading and opens a
// new one: the programs are still attached, listed as before and counting,
// and the hooks' state is back (a second XDP program runs after the first).
func TestRestartAdoptsPrograms(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	v := newVethPair(t)
	ctx := context.Background()
	load := func(m *runtime.Manager, ref string, progs ...runtime.ProgramRequest) []runtime.Program {
		t.Helper()
		out, err := load(ctx, m, ref, runtime.LoadRequest{Programs: progs, Metadata: map[string]string{"app": "restart"}})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	xdp := load(m, "file:xdp_counter.bpf.o", runtime.ProgramRequest{Name: "xdp_counter", Kind: progtype.XDP, Attach: runtime.XDPAttach{Interface: v.Peer, Netns: v.Netns}})[0]
	tc := []runtime.ProgramRequest{{Name: "tc_counter", Kind: progtype.TC, Attach: runtime.TCAttach{Interface: v.Peer, Netns: v.Netns, Direction: runtime.Ingress}}}
	if kernelHasTCX(t) {
		tc = append(tc, runtime.ProgramRequest{Name: "tcx_counter", Kind: progtype.TCX, Attach: runtime.TCXAttach{Interface: v.Host, Direction: runtime.Egress}})
	}
	load(m, "file:tc_counter.bpf.o", tc...)
	load(m, "file:tracepoint_counter.bpf.o", runtime.ProgramRequest{Name: "tracepoint_counter", Kind: progtype.Tracepoint, Attach: runtime.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}})
	before, err := m.List(ctx, runtime.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.List(ctx, runtime.ListOptions{}); err != runtime.ErrClosed {
		t.Fatalf("List after Close: %v, want ErrClosed", err)
	}

	m2 := e.open(t)
	after, err := m2.List(ctx, runtime.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The same programs, with the same kernel objects: adopted, not reloaded.
	if diff := cmp.Diff(before, after, cmpopts.IgnoreFields(runtime.KernelInfo{}, "Stats")); diff != "" {
		t.Fatalf("programs after restart (-before +after):\n%s", diff)
	}
	counter := mapPin(t, xdp, "xdp_stats")
	n := testutil.ReadU64(t, counter, udp)
	v.SendUDP(t, 10)
	eventually(t, "the adopted XDP program to count", func() bool { return testutil.ReadU64(t, counter, udp) >= n+10 })

	second := loadOne(t, m2, "file:xdp_counter.bpf.o", "xdp_counter", progtype.XDP, runtime.XDPAttach{Interface: v.Peer, Netns: v.Netns}, nil)
	assertChain(t, e, m2, xdp, second)

	ids := []runtime.ID{second.ID}
	for _, p := range after {
		ids = append(ids, p.ID)
	}
	if err := m2.Unload(ctx, ids...); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, e, m2)
	assertNoAttachments(t, v)
}

// TestRestartCleansUp opens a Manager over a store and bpffs that disagree
// with the kernel: programs whose interface went away are removed, pins
// without a record are removed, live programs are kept.
func TestRestartCleansUp(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	gone := newVethPair(t)
	ctx := context.Background()
	tc := []runtime.ProgramRequest{{Name: "tc_counter", Kind: progtype.TC, Attach: runtime.TCAttach{Interface: gone.Host, Direction: runtime.Egress}}}
	if kernelHasTCX(t) {
		tc = append(tc, runtime.ProgramRequest{Name: "tcx_counter", Kind: progtype.TCX, Attach: runtime.TCXAttach{Interface: gone.Peer, Netns: gone.Netns, Direction: runtime.Ingress}})
	}
	var kept runtime.ID
	for _, req := range []fileLoad{
		{"file:xdp_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{{Name: "xdp_counter", Kind: progtype.XDP, Attach: runtime.XDPAttach{Interface: gone.Peer, Netns: gone.Netns}}}}},
		{"file:tc_counter.bpf.o", runtime.LoadRequest{Programs: tc}},
		{"file:tracepoint_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{{Name: "tracepoint_counter", Kind: progtype.Tracepoint, Attach: runtime.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}}}}},
	} {
		progs, err := load(ctx, m, req.ref, req.req)
		if err != nil {
			t.Fatal(err)
		}
		kept = progs[len(progs)-1].ID
	}
	m.Close()

	// The interfaces go, and pins appear that no record knows.
	if err := netlink.LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: gone.Host}}); err != nil {
		t.Fatalf("delete veth %s: %v", gone.Host, err)
	}
	orphan := filepath.Join(e.bpffs, "4242")
	if err := os.MkdirAll(filepath.Join(orphan, "maps"), 0o700); err != nil {
		t.Fatal(err)
	}
	mp, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := mp.Pin(filepath.Join(orphan, "maps", "x")); err != nil {
		t.Fatal(err)
	}
	mp.Close()
	foreign := filepath.Join(e.bpffs, "not-bpfd")
	if err := os.Mkdir(foreign, 0o700); err != nil {
		t.Fatal(err)
	}

	m2 := e.open(t)
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("a directory bpfd does not name was removed: %v", err)
	}
	os.Remove(foreign)
	assertOnly(t, e, m2, -1, kept)
	if err := m2.Unload(ctx, kept); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, e, m2)
}

// TestRestartRepairsPins removes a program's pin and a map pin behind
// bpfd's back: Open pins them again from the live link.
func TestRestartRepairsPins(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	ctx := context.Background()
	progs, err := load(ctx, m, "file:tracepoint_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{{Name: "tracepoint_counter", Kind: progtype.Tracepoint, Attach: runtime.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}}}})
	if err != nil {
		t.Fatal(err)
	}
	p := progs[0]
	m.Close()
	for _, pin := range []string{filepath.Join(p.PinPath, "program"), p.Maps[0].PinPath} {
		if err := os.Remove(pin); err != nil {
			t.Fatal(err)
		}
	}
	m2 := e.open(t)
	got, err := m2.Get(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Kernel == nil || got.Kernel.ProgramID != p.Kernel.ProgramID {
		t.Fatalf("kernel info after repair %+v, want program %d", got.Kernel, p.Kernel.ProgramID)
	}
	if _, err := os.Stat(p.Maps[0].PinPath); err != nil {
		t.Fatalf("map pin not repaired: %v", err)
	}
	if err := m2.Unload(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, e, m2)
}

// TestOpenChecks refuses a second Manager on the same state dir and a
// state dir whose programs are pinned under another bpffs.
func TestOpenChecks(t *testing.T) {
	e := newEnv(t)
	e.open(t)
	_, err := runtime.Open(context.Background(), runtime.Options{StateDir: e.stateDir, BPFFS: e.bpffs})
	assertErr(t, err, runtime.ErrConflict, "in use by another process")

	_, err = runtime.Open(context.Background(), runtime.Options{StateDir: filepath.Join(t.TempDir(), "fresh"), BPFFS: "relative"})
	assertErr(t, err, runtime.ErrInvalid, "not an absolute path")
}

// TestOpenOtherBPFFS refuses a state dir used with another bpffs dir.
func TestOpenOtherBPFFS(t *testing.T) {
	e := newEnv(t)
	e.open(t).Close()
	other := newEnv(t)
	_, err := runtime.Open(context.Background(), runtime.Options{StateDir: e.stateDir, BPFFS: other.bpffs})
	assertErr(t, err, runtime.ErrConflict, "pinned under "+e.bpffs+", not "+other.bpffs)
}

// TestRestartKnowsKernelFacts: what never changes of a kernel program
// (name, tag, type, load time, maps) is recorded at load, so that a
// Manager opened again knows it without asking the kernel for each
// program, and describes the program as the one that loaded it did.
func TestRestartKnowsKernelFacts(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	ctx := context.Background()
	progs, err := load(ctx, m, "file:tracepoint_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
		{Name: "tracepoint_counter", Kind: progtype.Tracepoint, Attach: runtime.TracepointAttach{Tracepoint: "syscalls/sys_enter_getpid"}}}})
	if err != nil {
		t.Fatal(err)
	}
	p := progs[0]
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = e.open(t)
	if !runtime.KnowsProgram(m, p.Kernel.ProgramID) {
		t.Errorf("kernel program %d not known from the store after Open", p.Kernel.ProgramID)
	}
	list, err := m.List(ctx, runtime.ListOptions{})
	if err != nil || len(list) != 1 {
		t.Fatalf("List: %v (%v), want the program", list, err)
	}
	got, want := *list[0].Kernel, *p.Kernel
	got.Stats, want.Stats = nil, nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("kernel facts after the restart (-at load +after):\n%s", diff)
	}
	if err := m.Unload(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
}
