// freplace_target is an XDP program whose verdict comes from decide(), a global
// function an extension program (freplace) can replace while the program is
// loaded and attached. Unreplaced, decide() passes every packet.
#include "common.h"

// decide is global and __noinline, so it keeps its own BTF function with global
// linkage: the kernel verifies it on its own, and an extension may replace it.
__noinline int decide(struct xdp_md *ctx)
{
	// volatile keeps clang from folding the call into a constant.
	volatile int verdict = XDP_PASS;

	return verdict;
}

SEC("xdp")
int freplace_target(struct xdp_md *ctx)
{
	return decide(ctx);
}

char LICENSE[] SEC("license") = "GPL";
