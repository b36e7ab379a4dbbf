package main

import (
	"strconv"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"
)

// protocols names the IP protocols xdp_counter counts most often; others
// are reported by number. Index 0 counts frames that are not IP.
var protocols = map[uint32]string{0: "non-ip", 1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp"}

// collector reads xdp_counter's per-protocol map (an array of __u64
// indexed by IP protocol) at each scrape.
type collector struct {
	stats   *ebpf.Map
	packets *prometheus.Desc
	errors  prometheus.Counter
}

func newCollector(stats *ebpf.Map) *collector {
	return &collector{
		stats: stats,
		packets: prometheus.NewDesc("xdp_counter_packets_total",
			"Packets xdp_counter saw arrive on the node's interface, by IP protocol.", []string{"protocol"}, nil),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "xdp_counter_map_read_errors_total",
			Help: "Reads of the counters' map that failed."}),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.packets
	c.errors.Describe(ch)
}

// Collect reports every protocol counted at least once.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	var (
		key   uint32
		value uint64
	)
	it := c.stats.Iterate()
	for it.Next(&key, &value) {
		if value == 0 {
			continue
		}
		name, ok := protocols[key]
		if !ok {
			name = strconv.FormatUint(uint64(key), 10)
		}
		ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(value), name)
	}
	if it.Err() != nil {
		c.errors.Inc()
	}
	c.errors.Collect(ch)
}
