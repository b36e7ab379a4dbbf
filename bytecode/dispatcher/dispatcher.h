/* The configuration and stubs shared by bpfd's freplace dispatchers.
 *
 * A dispatcher runs up to MAX_DISPATCHER_ACTIONS programs on one hook, in
 * order. Each program is an extension (freplace) program that takes the place
 * of one of the stub functions prog0..prog9; the stubs of unused slots are
 * never called. conf is set when bpfd loads the dispatcher and frozen, so the
 * verifier prunes the unused slots. The layout of conf is libxdp's XDP
 * dispatcher configuration (version 2), so that libxdp's tools can read it.
 */
#ifndef BPFD_DISPATCHER_H
#define BPFD_DISPATCHER_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_DISPATCHER_ACTIONS 10
#define XDP_DISPATCHER_MAGIC 236
#define XDP_DISPATCHER_VERSION 2

struct xdp_dispatcher_config {
	__u8 magic;                                  /* XDP_DISPATCHER_MAGIC */
	__u8 dispatcher_version;                     /* XDP_DISPATCHER_VERSION */
	__u8 num_progs_enabled;                      /* slots in use, from prog0 */
	__u8 is_xdp_frags;                           /* loaded with BPF_F_XDP_HAS_FRAGS */
	__u32 chain_call_actions[MAX_DISPATCHER_ACTIONS]; /* proceed-on masks */
	__u32 run_prios[MAX_DISPATCHER_ACTIONS];     /* priorities, for display */
	__u32 program_flags[MAX_DISPATCHER_ACTIONS]; /* each program's load flags */
};

/* STUB defines slot n's stub: a global function, so that an extension
 * program can replace it, returning retval, which no program returns: an
 * unreplaced stub is told apart by the "dispatcher_return" proceed-on bit.
 * The volatile keeps clang from folding calls into constants. */
#define STUB(n, ctx_type, retval)                       \
	__attribute__((noinline)) int prog##n(ctx_type *ctx) \
	{                                               \
		volatile int ret = retval;              \
		if (!ctx)                               \
			return 0;                       \
		return ret;                             \
	}

#define STUBS(ctx_type, retval)                                              \
	STUB(0, ctx_type, retval) STUB(1, ctx_type, retval)                  \
	STUB(2, ctx_type, retval) STUB(3, ctx_type, retval)                  \
	STUB(4, ctx_type, retval) STUB(5, ctx_type, retval)                  \
	STUB(6, ctx_type, retval) STUB(7, ctx_type, retval)                  \
	STUB(8, ctx_type, retval) STUB(9, ctx_type, retval)

#ifdef ACCOUNT
/* With ACCOUNT the dispatcher also counts each slot's runs and the time its
 * program takes in chain_stats, one per-CPU element of counters that bpfd
 * reads. It reads the clock once before the first slot and once after each,
 * charging each slot the time since the previous reading. The layout is that
 * of the linked chains' counters (pkg/runtime/dispatcher/accounting.go).
 * bpfd runs such a dispatcher only while BPF statistics are on: without
 * ACCOUNT there is no accounting code at all. */
#define ACCOUNTED_SLOTS 64

struct slot_counter {
	__u64 runs;
	__u64 ns;
};

struct chain_counters {
	struct slot_counter slot[ACCOUNTED_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct chain_counters);
} chain_stats SEC(".maps");

/* COUNTERS declares the dispatcher's counters and reads the clock; RUN
 * calls slot n's program and accounts for it. */
#define COUNTERS                                                             \
	__u32 zero = 0;                                                      \
	struct chain_counters *counters = bpf_map_lookup_elem(&chain_stats, &zero); \
	__u64 start = bpf_ktime_get_ns(), now;
#define RUN(n, ctx)                                                          \
	ret = prog##n(ctx);                                                  \
	if (counters) {                                                      \
		now = bpf_ktime_get_ns();                                    \
		counters->slot[n].runs++;                                    \
		counters->slot[n].ns += now - start;                         \
		start = now;                                                 \
	}
#else
#define COUNTERS
#define RUN(n, ctx) ret = prog##n(ctx);
#endif

/* SLOT runs slot n unless fewer slots are enabled, and returns its verdict
 * unless proceed says the next program runs. */
#define SLOT(n, ctx, fallthrough)                                            \
	if (conf.num_progs_enabled <= n)                                     \
		return fallthrough;                                          \
	RUN(n, ctx)                                                          \
	if (!proceed(ret, conf.chain_call_actions[n]))                       \
		return ret;

#define SLOTS(ctx, fallthrough)                                              \
	SLOT(0, ctx, fallthrough) SLOT(1, ctx, fallthrough)                  \
	SLOT(2, ctx, fallthrough) SLOT(3, ctx, fallthrough)                  \
	SLOT(4, ctx, fallthrough) SLOT(5, ctx, fallthrough)                  \
	SLOT(6, ctx, fallthrough) SLOT(7, ctx, fallthrough)                  \
	SLOT(8, ctx, fallthrough) SLOT(9, ctx, fallthrough)

#endif
