package runtime_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

// unlinkFiles creates and removes n files, calling do_unlinkat n times.
func unlinkFiles(t *testing.T, n int) {
	t.Helper()
	dir := t.TempDir()
	for i := range n {
		p := filepath.Join(dir, "f"+itoa(uint32(i)))
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
}

// testEntryExit loads an entry and an exit program on do_unlinkat, unlinks
// files and checks both counted every call in the map's keys 0 and 1.
func testEntryExit(t *testing.T, ref, mapName string, entry, exit runtime.ProgramRequest) {
	e := newEnv(t)
	m := e.open(t)
	ctx := context.Background()
	progs, err := load(ctx, m, ref, runtime.LoadRequest{Programs: []runtime.ProgramRequest{entry, exit}})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	const calls = 9
	pin := mapPin(t, progs[0], mapName)
	before0, before1 := testutil.ReadU64(t, pin, 0), testutil.ReadU64(t, pin, 1)
	unlinkFiles(t, calls)
	if got := testutil.ReadU64(t, pin, 0) - before0; got < calls {
		t.Errorf("%s counted %d calls, want at least %d", entry.Name, got, calls)
	}
	if got := testutil.ReadU64(t, pin, 1) - before1; got < calls {
		t.Errorf("%s counted %d returns, want at least %d", exit.Name, got, calls)
	}
	if err := m.Unload(ctx, progs[0].ID, progs[1].ID); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, e, m)
}

func TestKprobeCountsCalls(t *testing.T) {
	testutil.RequireKernelFeature(t, testutil.FeatureKprobe)
	testutil.RequireKernelFeature(t, testutil.FeatureKretprobe)
	attach := runtime.KprobeAttach{Function: "do_unlinkat"}
	testEntryExit(t, "file:kprobe_counter.bpf.o", "kprobe_calls",
		runtime.ProgramRequest{Name: "kprobe_counter", Kind: progtype.Kprobe, Attach: attach},
		runtime.ProgramRequest{Name: "kretprobe_counter", Kind: progtype.Kretprobe, Attach: attach})
}

func TestFentryCountsCalls(t *testing.T) {
	testutil.RequireKernelFeature(t, testutil.FeatureFentry)
	testutil.RequireKernelFeature(t, testutil.FeatureFexit)
	attach := runtime.FentryAttach{Function: "do_unlinkat"}
	testEntryExit(t, "file:fentry_counter.bpf.o", "unlinkat_calls",
		runtime.ProgramRequest{Name: "fentry_counter", Kind: progtype.Fentry, Attach: attach},
		runtime.ProgramRequest{Name: "fexit_counter", Kind: progtype.Fexit, Attach: attach})
}

// TestKprobeMissingFunction checks that a kprobe or kretprobe on a function
// the kernel does not have fails as not found, naming it, and leaves nothing.
func TestKprobeMissingFunction(t *testing.T) {
	testutil.RequireKernelFeature(t, testutil.FeatureKprobe)
	testutil.RequireKernelFeature(t, testutil.FeatureKretprobe)
	e := newEnv(t)
	m := e.open(t)
	for name, kind := range map[string]progtype.Kind{"kprobe_counter": progtype.Kprobe, "kretprobe_counter": progtype.Kretprobe} {
		fds := openFDs(t)
		_, err := load(context.Background(), m, "file:kprobe_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
			{Name: name, Kind: kind, Attach: runtime.KprobeAttach{Function: "bpfd_no_such_function"}}}})
		assertErr(t, err, runtime.ErrHookNotFound, "program "+name+": kernel function bpfd_no_such_function: not a symbol this kernel can probe")
		t.Logf("error: %v", err)
		assertOnly(t, e, m, fds)
	}
}

// TestKprobeUnsupported checks, on a kernel without kprobes, that a kprobe
// load fails as unsupported and leaves nothing.
func TestKprobeUnsupported(t *testing.T) {
	testutil.RequirePrivileged(t)
	if testutil.KernelHas(testutil.FeatureKprobe) == nil {
		t.Skip("this kernel has kprobes")
	}
	e := newEnv(t)
	m := e.open(t)
	fds := openFDs(t)
	_, err := load(context.Background(), m, "file:kprobe_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
		{Name: "kprobe_counter", Kind: progtype.Kprobe, Attach: runtime.KprobeAttach{Function: "do_unlinkat"}}}})
	assertErr(t, err, runtime.ErrUnsupported, "kprobe on do_unlinkat")
	t.Logf("error: %v", err)
	assertOnly(t, e, m, fds)
}
