// uprobe_counter counts entries (index 0) and returns (index 1) of a user-space
// function; the binary and symbol are given at attach time.
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} uprobe_calls SEC(".maps");

SEC("uprobe")
int uprobe_counter(void *ctx)
{
	bump(&uprobe_calls, 0);
	return 0;
}

SEC("uretprobe")
int uretprobe_counter(void *ctx)
{
	bump(&uprobe_calls, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
