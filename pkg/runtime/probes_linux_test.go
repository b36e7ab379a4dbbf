package runtime_test

import (
	"context"
	"os"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

func TestTracepointCountsOpenat(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	ctx := context.Background()

	progs, err := load(ctx, m, "file:tracepoint_counter.bpf.o", runtime.LoadRequest{
		Programs: []runtime.ProgramRequest{{
			Name:   "tracepoint_counter",
			Kind:   progtype.Tracepoint,
			Attach: runtime.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"},
		}},
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	p := progs[0]
	counts, err := ebpf.LoadPinnedMap(mapPin(t, p, "openat_calls"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer counts.Close()
	pid := uint32(os.Getpid())
	var before uint64
	counts.Lookup(pid, &before) // absent means 0

	const opens = 50
	for range opens {
		f, err := os.Open("/proc/self/stat")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	var after uint64
	if err := counts.Lookup(pid, &after); err != nil {
		t.Fatalf("no openat count for this process (%d): %v", pid, err)
	}
	if after-before < opens {
		t.Fatalf("counted %d openat calls by this process, want at least %d", after-before, opens)
	}
	if err := m.Unload(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, e, m)
}

func TestUprobeCountsCalls(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	ctx := context.Background()

	attach := runtime.UprobeAttach{Target: testutil.UprobeTargetBinary(t), Offset: testutil.UprobeTargetOffset(t)}
	progs, err := load(ctx, m, "file:uprobe_counter.bpf.o", runtime.LoadRequest{
		Programs: []runtime.ProgramRequest{
			{Name: "uprobe_counter", Kind: progtype.Uprobe, Attach: attach},
			{Name: "uretprobe_counter", Kind: progtype.Uretprobe, Attach: attach},
		},
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	const calls = 7
	testutil.CallUprobeTarget(t, calls)
	pin := mapPin(t, progs[0], "uprobe_calls")
	if got := testutil.ReadU64(t, pin, 0); got != calls {
		t.Errorf("uprobe counted %d calls, want %d", got, calls)
	}
	if got := testutil.ReadU64(t, pin, 1); got != calls {
		t.Errorf("uretprobe counted %d returns, want %d", got, calls)
	}
	if err := m.Unload(ctx, progs[0].ID, progs[1].ID); err != nil {
		t.Fatal(err)
	}
	testutil.CallUprobeTarget(t, calls)
	assertEmpty(t, e, m)
}

func TestCgroupSKBCountsPackets(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	cg := testutil.NewCgroup(t)
	ctx := context.Background()

	progs, err := load(ctx, m, "file:cgroup_counter.bpf.o", runtime.LoadRequest{
		Programs: []runtime.ProgramRequest{
			{Name: "cgroup_ingress_counter", Kind: progtype.Cgroup, Attach: runtime.CgroupAttach{Path: cg}},
			{Name: "cgroup_egress_counter", Kind: progtype.Cgroup, Attach: runtime.CgroupAttach{Path: cg, AttachType: runtime.CgroupInetEgress}},
		},
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := progs[0].Attach.(runtime.CgroupAttach).AttachType; got != runtime.CgroupInetIngress {
		t.Errorf("attach type from the ELF section = %q, want %q", got, runtime.CgroupInetIngress)
	}
	const packets = 6
	testutil.SendUDPFromCgroup(t, cg, packets)
	pin := mapPin(t, progs[0], "cgroup_packets")
	if got := testutil.ReadU64(t, pin, 0); got < packets {
		t.Errorf("ingress counted %d packets, want at least %d", got, packets)
	}
	if got := testutil.ReadU64(t, pin, 1); got < packets {
		t.Errorf("egress counted %d packets, want at least %d", got, packets)
	}
	if err := m.Unload(ctx, progs[0].ID, progs[1].ID); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, e, m)
}
