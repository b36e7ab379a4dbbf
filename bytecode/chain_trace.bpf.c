// chain_trace records the order in which the programs of a chain run: each
// instance, loaded with its own tag, appends the tag to trace (shared by all
// instances: index 0 counts the entries, 1..15 hold them) and returns the
// verdict or action it was loaded with. Tests of the dispatchers use it with
// BPF_PROG_TEST_RUN, one packet at a time: the count is not atomic.
#include <linux/pkt_cls.h>
#include "common.h"

#define TRACE_LEN 16

const volatile __u32 tag = 0;
const volatile __s32 verdict = XDP_PASS;
const volatile __s32 action = TC_ACT_OK;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TRACE_LEN);
	__type(key, __u32);
	__type(value, __u32);
} trace SEC(".maps");

static __always_inline void record(void)
{
	__u32 zero = 0, *n = bpf_map_lookup_elem(&trace, &zero);
	__u32 i, *slot;

	if (!n)
		return;
	i = *n + 1;
	*n = i;
	if (i >= TRACE_LEN)
		return;
	slot = bpf_map_lookup_elem(&trace, &i);
	if (slot)
		*slot = tag;
}

SEC("xdp")
int trace_xdp(struct xdp_md *ctx)
{
	record();
	return verdict;
}

SEC("tc")
int trace_tc(struct __sk_buff *skb)
{
	record();
	return action;
}

char LICENSE[] SEC("license") = "GPL";
