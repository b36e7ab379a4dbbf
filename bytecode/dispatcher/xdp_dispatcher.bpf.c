// xdp_dispatcher runs up to ten XDP programs on one interface, in order. Each
// program replaces a stub prog0..prog9 as an extension program; after it
// returns, the next one runs when its verdict is in its slot's proceed-on mask
// (bit n: verdict n; bit 31: the stub was not replaced), otherwise its verdict
// is the dispatcher's. When every program proceeds the packet passes.
//
// The program's name, conf, the stubs and the xdp_metadata section follow
// libxdp's dispatcher (version 2): xdp-loader status shows the chain.
#include "dispatcher.h"

/* The program's name; the accounting variant names it differently. */
#ifndef DISPATCHER
#define DISPATCHER xdp_dispatcher
#endif

#define XDP_DISPATCHER_RETVAL 31

const volatile struct xdp_dispatcher_config conf = {
	.magic = XDP_DISPATCHER_MAGIC,
	.dispatcher_version = XDP_DISPATCHER_VERSION,
};

/* dispatcher_version tells libxdp this is its dispatcher layout, version 2:
 * the number is the array's length in the BTF of the loaded program. */
__uint(dispatcher_version, XDP_DISPATCHER_VERSION) SEC("xdp_metadata");

STUBS(struct xdp_md, XDP_DISPATCHER_RETVAL)

/* proceed reports whether verdict is in mask. */
static __always_inline int proceed(int verdict, __u32 mask)
{
	return (__u32)verdict <= 31 && ((1U << verdict) & mask);
}

SEC("xdp")
int DISPATCHER(struct xdp_md *ctx)
{
	int ret;
	COUNTERS

	SLOTS(ctx, XDP_PASS)
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
