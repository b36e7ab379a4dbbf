/* Shared helpers for bpfd's example programs. */
#ifndef BPFD_EXAMPLES_COMMON_H
#define BPFD_EXAMPLES_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* ip_protocol returns the IPv4 protocol or IPv6 next header of the Ethernet
 * frame in [data, data_end), or 0 for anything else (ARP, truncated frames). */
static __always_inline __u32 ip_protocol(void *data, void *data_end)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return 0;
		return ip->protocol;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return 0;
		return ip6->nexthdr;
	}
	return 0;
}

/* bump adds one to the __u64 at key in an array map. */
static __always_inline void bump(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

#endif
