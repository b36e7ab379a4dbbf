package runtime_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

// TestSetMapReaderNamespaces: the owner's map reader namespaces change on
// the loaded programs, all or none, and nothing else does: the kernel
// program and its map stay, with their counts, across a restart too.
func TestSetMapReaderNamespaces(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	ctx := context.Background()
	owner := runtime.Owner{Config: "counter", Namespace: "team-a", MapReaderNamespaces: []string{"apps"}}
	tp := func(name string) runtime.ProgramRequest {
		return runtime.ProgramRequest{Name: "tracepoint_counter", Kind: progtype.Tracepoint, Attach: runtime.TracepointAttach{Tracepoint: name}}
	}
	progs, err := load(ctx, m, "file:tracepoint_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{tp("syscalls/sys_enter_getpid")}, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	other, err := load(ctx, m, "file:tracepoint_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{tp("syscalls/sys_enter_getppid")}, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	ids := []runtime.ID{progs[0].ID, other[0].ID}
	defer m.Unload(ctx, ids...)
	pin := mapPin(t, progs[0], "openat_calls")
	stats, err := ebpf.LoadPinnedMap(pin, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stats.Close()
	if err := stats.Put(uint32(7), uint64(42)); err != nil {
		t.Fatal(err)
	}

	got, err := m.SetMapReaderNamespaces(ctx, []string{"apps", "monitoring"}, ids...)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range got {
		if p.ID != ids[i] || !slices.Equal(p.Owner.MapReaderNamespaces, []string{"apps", "monitoring"}) || p.Owner.Config != "counter" || p.Owner.Namespace != "team-a" {
			t.Errorf("program %d: owner %+v", p.ID, p.Owner)
		}
	}
	check := func(m *runtime.Manager, want []string) {
		t.Helper()
		for i, id := range ids {
			p, err := m.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.Owner.MapReaderNamespaces, want) {
				t.Errorf("program %d: map readers %v, want %v", id, p.Owner.MapReaderNamespaces, want)
			}
			before := []runtime.Program{progs[0], other[0]}[i]
			if p.Kernel == nil || p.Kernel.ProgramID != before.Kernel.ProgramID {
				t.Errorf("program %d: kernel program %+v, before %d: reloaded", id, p.Kernel, before.Kernel.ProgramID)
			}
		}
		var v uint64
		if err := stats.Lookup(uint32(7), &v); err != nil || v != 42 {
			t.Errorf("the map holds %d (%v), want 42", v, err)
		}
	}
	check(m, []string{"apps", "monitoring"})

	// All or nothing: an unknown id, or a name that is no namespace.
	if _, err := m.SetMapReaderNamespaces(ctx, []string{"web"}, ids[0], 9999); !errors.Is(err, runtime.ErrProgramNotFound) {
		t.Errorf("with an unknown id: %v, want ErrProgramNotFound", err)
	}
	if _, err := m.SetMapReaderNamespaces(ctx, []string{"Web!"}, ids...); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("with a bad namespace: %v, want ErrInvalid", err)
	}
	if _, err := m.SetMapReaderNamespaces(ctx, []string{"web"}); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("with no id: %v, want ErrInvalid", err)
	}
	check(m, []string{"apps", "monitoring"})

	// Recorded: a restarted Manager adopts the programs with their owner.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = e.open(t)
	check(m, []string{"apps", "monitoring"})
	if _, err := m.SetMapReaderNamespaces(ctx, nil, ids...); err != nil {
		t.Fatal(err)
	}
	check(m, nil)
}
