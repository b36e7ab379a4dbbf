// xdp_dispatcher_stats is xdp_dispatcher that also accounts each slot's runs
// and run time (ACCOUNT in dispatcher.h). bpfd runs it in place of
// xdp_dispatcher while BPF statistics are on. Its other name keeps libxdp from
// taking it for its own dispatcher, whose layout (one map) it does not have.
#define ACCOUNT
#define DISPATCHER xdp_dispatcher_stats
#include "xdp_dispatcher.bpf.c"
