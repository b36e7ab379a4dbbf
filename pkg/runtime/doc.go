// Package runtime loads BPF programs into the kernel, attaches them to their
// hooks, pins them under bpfd's bpffs and records them in a state store that
// survives restarts. It knows nothing of images or signatures: its caller
// (bpfd's daemon) resolves, fetches and verifies an artifact first, and
// hands Load the admitted bytecode with its provenance.
//
// A Manager is opened on a state directory (a bbolt store) and a bpffs
// directory; Open reconciles both with the kernel, adopting programs that
// are still attached. Load checks a request against the bytecode, loads,
// attaches, pins under <bpffs>/<id>/ and records the programs, all or
// nothing; Unload, Get and List do the rest. The programs of an XDP hook, or
// of one direction of a TC hook, run in a chain that the hook's dispatcher
// (package dispatcher) rebuilds and swaps in atomically on every load and
// unload, by priority and each with its own proceed-on set. A SIGKILL at any
// moment leaves a state the next Open repairs. docs/runtime.md describes the pin layout,
// the store schema and the crash-safety argument.
//
// Errors wrap the sentinels in errors.go (ErrInvalid, ErrProgramNotFound,
// ErrHookNotFound, ErrConflict, ...) so that callers map them with
// errors.Is, never by their text.
package runtime
