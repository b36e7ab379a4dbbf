// packet_counters holds two programs that share one map: packets seen by XDP on
// ingress (index 0) and by TC on egress (index 1) of the same interface.
#include <linux/pkt_cls.h>
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} packet_stats SEC(".maps");

SEC("xdp")
int xdp_ingress_counter(struct xdp_md *ctx)
{
	bump(&packet_stats, 0);
	return XDP_PASS;
}

SEC("tc")
int tc_egress_counter(struct __sk_buff *skb)
{
	bump(&packet_stats, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
