package main

import (
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus/testutil"

	bpfdtestutil "github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// TestCollector reads a map laid out like xdp_counter's: every protocol
// counted at least once is a sample, named when known.
func TestCollector(t *testing.T) {
	bpfdtestutil.RequirePrivileged(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for k, v := range map[uint32]uint64{0: 3, 6: 40, 17: 12, 253: 1} {
		if err := m.Put(k, v); err != nil {
			t.Fatal(err)
		}
	}
	want := `# HELP xdp_counter_map_read_errors_total Reads of the counters' map that failed.
# TYPE xdp_counter_map_read_errors_total counter
xdp_counter_map_read_errors_total 0
# HELP xdp_counter_packets_total Packets xdp_counter saw arrive on the node's interface, by IP protocol.
# TYPE xdp_counter_packets_total counter
xdp_counter_packets_total{protocol="253"} 1
xdp_counter_packets_total{protocol="non-ip"} 3
xdp_counter_packets_total{protocol="tcp"} 40
xdp_counter_packets_total{protocol="udp"} 12
`
	if err := testutil.CollectAndCompare(newCollector(m), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
