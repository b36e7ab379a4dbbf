// xdp_work does a chosen amount of work per packet, then passes it or, with
// drop_odd set, drops the packets whose first byte is odd. Both read-only
// globals are set at load time: rounds is how many rounds of a hash over
// the packet's first byte it computes (at most 10000). Tests of per-program
// cost chain several with different rounds and count the packets each saw.
#include "common.h"

#define MAX_ROUNDS 10000

const volatile __u32 rounds = 1;
const volatile __u32 drop_odd = 0;

SEC("xdp")
int xdp_work(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	volatile __u32 h;
	__u8 first;

	if (data + 1 > data_end)
		return XDP_PASS;
	first = *(__u8 *)data;
	h = first;
	for (__u32 i = 0; i < rounds && i < MAX_ROUNDS; i++)
		h = h * 31 + i;
	if (drop_odd && (first & 1))
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
