// Package daemon wires bpfd together: its configuration file, the API socket
// with its peer credentials and access rules, the audit log and the metrics,
// and the gRPC server that adapts the bpfd.v1 API. A Load goes one way: the
// server checks the request, the supply chain (internal/supplychain)
// resolves, pulls and verifies the artifact, and the server hands the
// admitted bytecode to the runtime (pkg/runtime), which loads it.
package daemon
