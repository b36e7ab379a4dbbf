// Package daemon wires bpfd together: its configuration file, the bytecode
// source that resolves, pulls, caches and verifies artifacts (pkg/artifact and
// pkg/verify) for the runtime (pkg/runtime), and the gRPC server that adapts
// the bpfd.v1 API to the runtime.
package daemon
