package runtime_test

import (
	"context"
	"encoding/binary"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

func TestListFiltersAndUnmanaged(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	v := newVethPair(t)
	ctx := context.Background()
	load := func(ref string, md map[string]string, p runtime.ProgramRequest) runtime.Program {
		t.Helper()
		progs, err := load(ctx, m, ref, runtime.LoadRequest{Programs: []runtime.ProgramRequest{p}, Metadata: md})
		if err != nil {
			t.Fatal(err)
		}
		return progs[0]
	}
	xdp := load("file:xdp_counter.bpf.o", map[string]string{"app": "web", "team": "net"},
		runtime.ProgramRequest{Name: "xdp_counter", Kind: progtype.XDP, Attach: runtime.XDPAttach{Interface: v.Peer, Netns: v.Netns}})
	tp := load("file:tracepoint_counter.bpf.o", map[string]string{"app": "audit"},
		runtime.ProgramRequest{Name: "tracepoint_counter", Kind: progtype.Tracepoint, Attach: runtime.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}})

	// A program bpfd did not load.
	other, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "bpfd_test_other", Type: ebpf.SocketFilter, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	info, _ := other.Info()
	otherID, _ := info.ID()

	ids := func(opts runtime.ListOptions) (managed []runtime.ID, unmanaged []uint32) {
		t.Helper()
		progs, err := m.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range progs {
			if opts.Records && (p.Kernel != nil || len(p.Maps) == 0 || p.Provenance.Reference == "") {
				t.Fatalf("program %d described from its records: kernel %+v, maps %v, provenance %+v; want no kernel, the recorded maps and provenance", p.ID, p.Kernel, p.Maps, p.Provenance)
			}
			if p.Managed {
				managed = append(managed, p.ID)
			} else {
				if p.Kernel == nil || p.ID != 0 {
					t.Fatalf("unmanaged program %+v", p)
				}
				unmanaged = append(unmanaged, p.Kernel.ProgramID)
			}
		}
		return managed, unmanaged
	}
	cases := map[string]struct {
		opts          runtime.ListOptions
		want          []runtime.ID
		wantUnmanaged bool
	}{
		"all managed":              {opts: runtime.ListOptions{}, want: []runtime.ID{xdp.ID, tp.ID}},
		"by kind":                  {opts: runtime.ListOptions{Kind: progtype.Tracepoint}, want: []runtime.ID{tp.ID}},
		"by selector":              {opts: runtime.ListOptions{Selector: map[string]string{"app": "web"}}, want: []runtime.ID{xdp.ID}},
		"by two labels":            {opts: runtime.ListOptions{Selector: map[string]string{"app": "web", "team": "net"}}, want: []runtime.ID{xdp.ID}},
		"selector matching none":   {opts: runtime.ListOptions{Selector: map[string]string{"app": "db"}}},
		"all with unmanaged":       {opts: runtime.ListOptions{All: true}, want: []runtime.ID{xdp.ID, tp.ID}, wantUnmanaged: true},
		"all of a kind":            {opts: runtime.ListOptions{All: true, Kind: progtype.XDP}, want: []runtime.ID{xdp.ID}},
		"all with a selector only": {opts: runtime.ListOptions{All: true, Selector: map[string]string{"app": "audit"}}, want: []runtime.ID{tp.ID}},
		"records":                  {opts: runtime.ListOptions{Records: true}, want: []runtime.ID{xdp.ID, tp.ID}},
		"records of a kind":        {opts: runtime.ListOptions{Records: true, Kind: progtype.XDP}, want: []runtime.ID{xdp.ID}},
		"records by selector":      {opts: runtime.ListOptions{Records: true, Selector: map[string]string{"app": "audit"}}, want: []runtime.ID{tp.ID}},
		"records ignore all":       {opts: runtime.ListOptions{Records: true, All: true}, want: []runtime.ID{xdp.ID, tp.ID}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			managed, unmanaged := ids(tc.opts)
			if !equalIDs(managed, tc.want) {
				t.Errorf("managed programs %v, want %v", managed, tc.want)
			}
			found := false
			for _, id := range unmanaged {
				found = found || id == uint32(otherID)
				if id == xdp.Kernel.ProgramID || id == tp.Kernel.ProgramID {
					t.Errorf("managed program %d also listed as unmanaged", id)
				}
			}
			if found != tc.wantUnmanaged {
				t.Errorf("unmanaged socket filter %d listed: %v, want %v", otherID, found, tc.wantUnmanaged)
			}
		})
	}
	if err := m.Unload(ctx, xdp.ID, tp.ID); err != nil {
		t.Fatal(err)
	}
}

func equalIDs(a, b []runtime.ID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestListReadsWhatChanges checks what List reads from the kernel for each
// call, rather than remembering it: that a program's kernel program is gone
// (its pins removed behind bpfd's back), and its run statistics while the
// sysctl kernel.bpf_stats_enabled is on.
func TestListReadsWhatChanges(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	ctx := context.Background()
	loadTP := func(tp string) runtime.Program {
		t.Helper()
		progs, err := load(ctx, m, "file:tracepoint_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
			{Name: "tracepoint_counter", Kind: progtype.Tracepoint, Attach: runtime.TracepointAttach{Tracepoint: tp}}}})
		if err != nil {
			t.Fatal(err)
		}
		return progs[0]
	}
	kept, gone := loadTP("syscalls/sys_enter_getpid"), loadTP("syscalls/sys_enter_getppid")
	listed := func() map[runtime.ID]runtime.Program {
		t.Helper()
		progs, err := m.List(ctx, runtime.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[runtime.ID]runtime.Program{}
		for _, p := range progs {
			out[p.ID] = p
		}
		return out
	}
	before := listed()
	if k := before[gone.ID].Kernel; k == nil || k.ProgramID != gone.Kernel.ProgramID || k.Name != "tracepoint_counter" || k.Tag == "" {
		t.Fatalf("listed kernel program %+v, want %+v", k, gone.Kernel)
	}

	// Removing the pins unloads the program: the kernel frees it.
	if err := os.RemoveAll(gone.PinPath); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the unpinned program listed without a kernel program", func() bool {
		p, ok := listed()[gone.ID]
		return ok && p.Kernel == nil
	})
	if p, err := m.Get(ctx, gone.ID); err != nil || p.Kernel != nil {
		t.Fatalf("Get of the unpinned program: %+v, %v; want it without a kernel program", p.Kernel, err)
	}
	if k := listed()[kept.ID].Kernel; k == nil || k.ProgramID != kept.Kernel.ProgramID {
		t.Fatalf("the other program's kernel program %+v, want %d", k, kept.Kernel.ProgramID)
	}

	// Statistics while the sysctl is on.
	const sysctl = "/proc/sys/kernel/bpf_stats_enabled"
	was, err := os.ReadFile(sysctl)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sysctl, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile(sysctl, was, 0o644) })
	for range 5 {
		unix.Getpid()
	}
	eventually(t, "5 runs listed", func() bool {
		k := listed()[kept.ID].Kernel
		return k != nil && k.Stats != nil && k.Stats.RunCount >= 5
	})
	if err := m.Unload(ctx, kept.ID, gone.ID); err != nil {
		t.Fatal(err)
	}
}

// TestRunStats turns the kernel's BPF statistics on and checks that Get
// reports the program's runs. (The kernel counts the runs of a freplace
// chain's programs to the chain's dispatcher, so this uses a tracepoint.)
func TestRunStats(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	ctx := context.Background()
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		t.Fatalf("enable BPF statistics: %v", err)
	}
	defer stats.Close()
	progs, err := load(ctx, m, "file:tracepoint_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
		{Name: "tracepoint_counter", Kind: progtype.Tracepoint, Attach: runtime.TracepointAttach{Tracepoint: "syscalls/sys_enter_getpid"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for range 12 {
		unix.Getpid()
	}
	eventually(t, "12 runs reported", func() bool {
		p, err := m.Get(ctx, progs[0].ID)
		return err == nil && p.Kernel.Stats != nil && p.Kernel.Stats.RunCount >= 12 && p.Kernel.Stats.RunTime > 0
	})
	if err := m.Unload(ctx, progs[0].ID); err != nil {
		t.Fatal(err)
	}
}

// TestGlobalOverride loads xdp_verdict with its verdict set to XDP_DROP:
// the program drops what it counts, and the override is recorded.
func TestGlobalOverride(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	v := newVethPair(t)
	ctx := context.Background()
	drop := binary.NativeEndian.AppendUint32(nil, 1) // XDP_DROP
	progs, err := load(ctx, m, "file:xdp_verdict.bpf.o", runtime.LoadRequest{
		Programs: []runtime.ProgramRequest{{Name: "xdp_verdict", Kind: progtype.XDP, Attach: runtime.XDPAttach{Interface: v.Peer, Netns: v.Netns}}},
		Globals:  map[string][]byte{"verdict": drop},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := progs[0]
	if got := readU32(t, mapPin(t, p, ".rodata"), 0); got != 1 {
		t.Fatalf("verdict in .rodata = %d, want 1 (XDP_DROP)", got)
	}
	v.SendUDP(t, 8)
	eventually(t, "8 packets counted in .bss", func() bool { return testutil.ReadU64(t, mapPin(t, p, ".bss"), 0) >= 8 })
	got, err := m.Get(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Globals["verdict"]) != string(drop) {
		t.Errorf("recorded globals %v, want verdict=%v", got.Globals, drop)
	}
	if err := m.Unload(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
}

// readU32 reads the first __u32 of the value at key of a pinned map.
func readU32(t *testing.T, pin string, key uint32) uint32 {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(pin, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	buf := make([]byte, m.ValueSize())
	if err := m.Lookup(key, &buf); err != nil {
		t.Fatal(err)
	}
	return binary.NativeEndian.Uint32(buf)
}
