// map_events records each getppid(2) call of one process (the .rodata
// global target_tgid, 0 for every process) in maps of several kinds, to
// show and test decoding maps and streaming events with BTF: a hash map of
// structs by tgid, a per-CPU array, and each call as a struct event record
// in a ring buffer and a perf event array.
#include "common.h"

enum event_kind {
	KIND_EVEN = 1,
	KIND_ODD = 2,
};

struct event {
	__u64 seq;
	__u32 pid;
	enum event_kind kind;
	char comm[16];
};

struct call_stats {
	__u64 calls;
	__u64 last_seq;
	enum event_kind last_kind;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct call_stats);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} percpu_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events_rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events_perf SEC(".maps");

const volatile __u32 target_tgid = 0;
__u64 seq = 0;
// ringbuf_full counts the records the ring buffer had no room for: a ring
// buffer's producer sees its failures, the kernel does not count them.
__u64 ringbuf_full = 0;
// The record type, named so that the object's BTF has it.
const struct event *unused_event __attribute__((unused));

SEC("tracepoint/syscalls/sys_enter_getppid")
int map_events(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32, zero = 0;
	struct call_stats *st, fresh = {};
	struct event e = {}, *r;
	__u64 *n;

	if (target_tgid && tgid != target_tgid)
		return 0;
	e.seq = __sync_fetch_and_add(&seq, 1) + 1;
	e.pid = tgid;
	e.kind = e.seq % 2 ? KIND_ODD : KIND_EVEN;
	bpf_get_current_comm(e.comm, sizeof(e.comm));

	st = bpf_map_lookup_elem(&calls, &tgid);
	if (!st) {
		bpf_map_update_elem(&calls, &tgid, &fresh, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&calls, &tgid);
		if (!st)
			return 0;
	}
	__sync_fetch_and_add(&st->calls, 1);
	st->last_seq = e.seq;
	st->last_kind = e.kind;
	__builtin_memcpy(st->comm, e.comm, sizeof(e.comm));

	n = bpf_map_lookup_elem(&percpu_calls, &zero);
	if (n)
		*n += 1;

	r = bpf_ringbuf_reserve(&events_rb, sizeof(*r), 0);
	if (r) {
		__builtin_memcpy(r, &e, sizeof(e));
		bpf_ringbuf_submit(r, 0);
	} else {
		__sync_fetch_and_add(&ringbuf_full, 1);
	}
	bpf_perf_event_output(ctx, &events_perf, BPF_F_CURRENT_CPU, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
