// xdp_verdict counts packets and returns a verdict chosen at load time: the
// read-only global verdict (default XDP_PASS) is meant to be overridden by the
// loader; packets (in .bss) counts every packet seen.
#include "common.h"

const volatile __u32 verdict = XDP_PASS;
__u64 packets = 0;

SEC("xdp")
int xdp_verdict(struct xdp_md *ctx)
{
	__sync_fetch_and_add(&packets, 1);
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
