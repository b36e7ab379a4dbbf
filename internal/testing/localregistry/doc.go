// Package localregistry runs distribution's OCI registry (the `registry`
// binary, which `make tools` builds into bin/tools) as a process serving
// plain HTTP on a loopback port, with its storage in a directory of the
// caller's. bpfd's tests start one through internal/testutil.StartRegistry,
// its benchmarks directly.
package localregistry
