package kerneltest

import (
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
)

// loadSpec parses bytecode/NAME.bpf.o of this repository.
func loadSpec(t *testing.T, name string) *ebpf.CollectionSpec {
	t.Helper()
	spec, err := ebpf.LoadCollectionSpec(filepath.Join("..", "..", "..", "bytecode", name+".bpf.o"))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// newCollection loads spec into the kernel until the test ends.
func newCollection(t *testing.T, spec *ebpf.CollectionSpec) *ebpf.Collection {
	t.Helper()
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Cleanup(coll.Close)
	return coll
}

// counter reads the __u64 at key of an array map.
func counter(t *testing.T, m *ebpf.Map, key uint32) uint64 {
	t.Helper()
	var v uint64
	if err := m.Lookup(key, &v); err != nil {
		t.Fatalf("read counter %d: %v", key, err)
	}
	return v
}
