package testutil

import (
	"errors"
	"net"
	"testing"

	"github.com/cilium/ebpf"
)

// ReadU64 reads the __u64 value at key in the map pinned at pin: the
// counters of bytecode/'s programs. A key not in the map reads 0.
func ReadU64(tb testing.TB, pin string, key uint32) uint64 {
	tb.Helper()
	m, err := ebpf.LoadPinnedMap(pin, nil)
	if err != nil {
		tb.Fatalf("open map %s: %v", pin, err)
	}
	defer m.Close()
	var v uint64
	if err := m.Lookup(key, &v); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		tb.Fatalf("map %s key %d: %v", pin, key, err)
	}
	return v
}

// FreeLoopbackAddr returns a 127.0.0.1 address with a port that was free a
// moment ago, for a process the test starts to listen on.
func FreeLoopbackAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
