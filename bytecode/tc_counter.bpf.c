// tc_counter counts packets per IP protocol (index 0: not IP) on a TC hook.
// tc_counter is for clsact/cls_bpf in direct-action mode and returns TC_ACT_OK;
// tcx_counter is for TCX links and returns TCX_NEXT so later programs still run.
// Both count into the same map.
#include <linux/pkt_cls.h>
#include "common.h"

#ifndef TCX_NEXT
#define TCX_NEXT -1
#endif

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} tc_stats SEC(".maps");

static __always_inline void count(struct __sk_buff *skb)
{
	bump(&tc_stats, ip_protocol((void *)(long)skb->data, (void *)(long)skb->data_end));
}

SEC("tc")
int tc_counter(struct __sk_buff *skb)
{
	count(skb);
	return TC_ACT_OK;
}

SEC("tcx/ingress")
int tcx_counter(struct __sk_buff *skb)
{
	count(skb);
	return TCX_NEXT;
}

char LICENSE[] SEC("license") = "GPL";
