// tc_reject reads a packet byte without checking the packet's bounds, which
// the verifier rejects: the dispatcher tests check that a chain with it
// fails, naming it, and leaves the hook's chain as it was.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int tc_unchecked(struct __sk_buff *skb)
{
	unsigned char *data = (void *)(long)skb->data;

	return data[0] == 0 ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
