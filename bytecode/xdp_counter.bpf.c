// xdp_counter counts packets per IP protocol (index 0: not IP) and passes them all.
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} xdp_stats SEC(".maps");

SEC("xdp")
int xdp_counter(struct xdp_md *ctx)
{
	bump(&xdp_stats, ip_protocol((void *)(long)ctx->data, (void *)(long)ctx->data_end));
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
