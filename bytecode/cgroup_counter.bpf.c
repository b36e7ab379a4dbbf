// cgroup_counter counts the packets a cgroup's sockets receive (index 0) and
// send (index 1), and allows them all.
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} cgroup_packets SEC(".maps");

SEC("cgroup_skb/ingress")
int cgroup_ingress_counter(struct __sk_buff *skb)
{
	bump(&cgroup_packets, 0);
	return 1;
}

SEC("cgroup_skb/egress")
int cgroup_egress_counter(struct __sk_buff *skb)
{
	bump(&cgroup_packets, 1);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
