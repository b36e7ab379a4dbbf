// verifier_reject reads a packet byte without checking the packet's bounds,
// which the verifier rejects: the runtime tests use it to check that a
// rejection names the program and carries the verifier log's tail.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_unchecked(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;

	return data[0] == 0 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
