package dispatcher_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

func TestMain(m *testing.M) { testutil.LeakCheckMain(m) }

// forEachMode runs fn as a subtest in each mode the kernel has: linked
// everywhere, freplace where extension programs work (in the test VM).
func forEachMode(t *testing.T, fn func(t *testing.T, mode dispatcher.Mode)) {
	t.Helper()
	t.Run("linked", func(t *testing.T) {
		testutil.RequirePrivileged(t)
		fn(t, dispatcher.ModeLinked)
	})
	t.Run("freplace", func(t *testing.T) {
		testutil.RequireKernelFeature(t, testutil.FeatureFreplace)
		fn(t, dispatcher.ModeFreplace)
	})
}

// objectSpec parses bytecode/NAME.bpf.o of this repository, or NAME.bpf.o
// when NAME is a path (relative to this package).
func objectSpec(t testing.TB, name string) *ebpf.CollectionSpec {
	t.Helper()
	path := filepath.Join("..", "..", "..", "bytecode", name+".bpf.o")
	if strings.Contains(name, "/") {
		path = name + ".bpf.o"
	}
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// program describes a member to make from a program of bytecode/.
type program struct {
	object, name string
	// globals overrides global variables.
	globals map[string]any
	// shared are maps to use instead of creating the object's own.
	shared map[string]*ebpf.Map
}

// member loads p's maps (as the runtime would: the object's maps, with
// globals set and shared ones reused) until the test ends and returns p as a
// member with the default proceed-on set.
func member(t testing.TB, kind progtype.Kind, id uint64, priority int, p program) dispatcher.Member {
	t.Helper()
	spec := objectSpec(t, p.object)
	for name, v := range p.globals {
		if err := spec.Variables[name].Set(v); err != nil {
			t.Fatalf("%s: set %s: %v", p.object, name, err)
		}
	}
	maps, err := ebpf.NewCollectionWithOptions(
		&ebpf.CollectionSpec{Maps: spec.Maps, Variables: spec.Variables, Types: spec.Types, ByteOrder: spec.ByteOrder},
		ebpf.CollectionOptions{MapReplacements: p.shared})
	if err != nil {
		t.Fatalf("%s: create maps: %v", p.object, err)
	}
	t.Cleanup(maps.Close)
	prog := spec.Programs[p.name]
	if prog == nil {
		t.Fatalf("%s: no program %s", p.object, p.name)
	}
	return dispatcher.Member{
		ID: id, Name: p.name, Priority: priority, ProceedOn: dispatcher.DefaultProceedOn(kind),
		Program: prog, Maps: maps.Maps,
	}
}

// counter reads the __u64 at key of an array map.
func counter(t testing.TB, m *ebpf.Map, key uint32) uint64 {
	t.Helper()
	var v uint64
	if err := m.Lookup(key, &v); err != nil {
		t.Fatalf("read counter %d: %v", key, err)
	}
	return v
}

// newCollection loads bytecode/NAME.bpf.o until the test ends.
func newCollection(t testing.TB, name string) *ebpf.Collection {
	t.Helper()
	coll, err := ebpf.NewCollection(objectSpec(t, name))
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	t.Cleanup(coll.Close)
	return coll
}

// ids returns the member ids of slots.
func ids(slots []dispatcher.Slot) []uint64 {
	out := []uint64{}
	for _, s := range slots {
		out = append(out, s.ID)
	}
	return out
}
