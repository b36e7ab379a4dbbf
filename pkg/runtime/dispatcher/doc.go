// Package dispatcher runs several BPF programs on one XDP or TC hook, in
// order: each program has a priority (lower first) and a proceed-on set of
// return values after which the next program runs; any other return value is
// the hook's result. The caller (the runtime's Manager) orders the programs
// and owns their maps; this package builds the chain, attaches it, and swaps
// it atomically for a new one whenever the programs change.
//
// Two modes build a chain; ResolveMode picks one per kernel at start-up:
//
//   - ModeFreplace loads a dispatcher compiled from bytecode/dispatcher,
//     whose ten stub functions the programs replace as extension programs.
//     The XDP dispatcher follows libxdp's layout, so xdp-loader status shows
//     the chain.
//   - ModeLinked links the programs, as BPF-to-BPF functions, into one
//     generated program that the kernel verifies and attaches as one; it
//     works on kernels that refuse extension programs.
//
// XDP chains attach through a BPF link, swapped with BPF_LINK_UPDATE; TC
// chains through a TCX link where the kernel has TCX, else as a cls_bpf
// filter replaced in place. docs/multi-program.md describes the semantics for
// users.
package dispatcher
