// tc_dispatcher runs up to ten TC programs on one hook (TCX link or cls_bpf
// filter in direct-action mode), in order. Each program replaces a stub
// prog0..prog9 as an extension program; after it returns, the next one runs
// when its action is in its slot's proceed-on mask (bit a+1: action a, from
// TC_ACT_UNSPEC = -1 at bit 0; bit 31: the stub was not replaced), otherwise
// its action is the dispatcher's. When every program proceeds the packet goes
// on (TC_ACT_OK).
#include <linux/pkt_cls.h>
#include "dispatcher.h"

/* The program's name; the accounting variant names it differently. */
#ifndef DISPATCHER
#define DISPATCHER tc_dispatcher
#endif

#define TC_DISPATCHER_RETVAL 30

const volatile struct xdp_dispatcher_config conf = {
	.magic = XDP_DISPATCHER_MAGIC,
	.dispatcher_version = XDP_DISPATCHER_VERSION,
};

STUBS(struct __sk_buff, TC_DISPATCHER_RETVAL)

/* proceed reports whether action is in mask. */
static __always_inline int proceed(int action, __u32 mask)
{
	__u32 bit = (__u32)(action + 1);

	return bit <= 31 && ((1U << bit) & mask);
}

SEC("tc")
int DISPATCHER(struct __sk_buff *skb)
{
	int ret;
	COUNTERS

	SLOTS(skb, TC_ACT_OK)
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
