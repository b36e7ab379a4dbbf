// freplace_ext is an extension program: attached to freplace_target, it takes
// the place of decide() and drops every packet.
#include "common.h"

SEC("freplace/decide")
int freplace_ext(struct xdp_md *ctx)
{
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
