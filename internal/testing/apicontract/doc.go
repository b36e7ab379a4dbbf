// Package apicontract is the contract of bpfd's node API that both the real
// daemon (internal/daemon, on the kernel) and the in-memory bpfd the
// Kubernetes side's tests use (internal/testing/k8stest) must keep: one
// scenario of requests, as root and as other uids, with the status code and
// ErrorInfo reason each must get, and what Get and List must return after
// each Load and Unload. Both run it; where they disagree, the fake is wrong.
package apicontract
