// tc_verdict counts packets and returns a TC action chosen at load time: the
// read-only global action (default TC_ACT_OK) is meant to be overridden by the
// loader; packets (in .bss) counts every packet seen. It is xdp_verdict for TC.
#include <linux/pkt_cls.h>
#include "common.h"

const volatile __s32 action = TC_ACT_OK;
__u64 packets = 0;

SEC("tc")
int tc_verdict(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&packets, 1);
	return action;
}

char LICENSE[] SEC("license") = "GPL";
