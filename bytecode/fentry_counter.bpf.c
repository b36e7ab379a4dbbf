// fentry_counter counts entries (index 0) and exits (index 1) of the kernel's
// do_unlinkat, through BPF trampolines (needs the kernel's BTF).
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} unlinkat_calls SEC(".maps");

SEC("fentry/do_unlinkat")
int fentry_counter(void *ctx)
{
	bump(&unlinkat_calls, 0);
	return 0;
}

SEC("fexit/do_unlinkat")
int fexit_counter(void *ctx)
{
	bump(&unlinkat_calls, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
