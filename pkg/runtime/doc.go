// Package runtime loads BPF programs into the kernel, attaches them to their
// hooks, pins them under bpfd's bpffs and records them in a state store that
// survives restarts. It knows nothing of images or signatures: bytecode
// reaches it through a source interface that cmd/bpfd implements.
package runtime
