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

/* SLOT runs slot n unless fewer slots are enabled, and returns its verdict
 * unless proceed says the next program runs. */
#define SLOT(n, ctx, fallthrough)                                            \
	if (conf.num_progs_enabled <= n)                                     \
		return fallthrough;                                          \
	ret = prog##n(ctx);                                                  \
	if (!proceed(ret, conf.chain_call_actions[n]))                       \
		return ret;

#define SLOTS(ctx, fallthrough)                                              \
	SLOT(0, ctx, fallthrough) SLOT(1, ctx, fallthrough)                  \
	SLOT(2, ctx, fallthrough) SLOT(3, ctx, fallthrough)                  \
	SLOT(4, ctx, fallthrough) SLOT(5, ctx, fallthrough)                  \
	SLOT(6, ctx, fallthrough) SLOT(7, ctx, fallthrough)                  \
	SLOT(8, ctx, fallthrough) SLOT(9, ctx, fallthrough)

#endif
