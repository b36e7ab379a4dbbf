// kprobe_counter counts entries (index 0) and returns (index 1) of getpid(2)
// in the kernel; the function can be changed at attach time.
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} kprobe_calls SEC(".maps");

SEC("kprobe/sys_getpid")
int kprobe_counter(void *ctx)
{
	bump(&kprobe_calls, 0);
	return 0;
}

SEC("kretprobe/sys_getpid")
int kretprobe_counter(void *ctx)
{
	bump(&kprobe_calls, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
