// Package upgrade tests what happens to a node's programs when bpfd
// changes under them: bpfd and bpfctl of the previous release (built from
// its git tag by internal/testing/release) load programs, and this tree's
// bpfd starts over the same state dir, bpffs, cache and socket. The
// programs are adopted without reloading and count every packet of a
// stream that flows the whole time; the other way, the previous release's
// bpfd refuses the newer store and changes nothing. The skew tests run each
// version's requests against the other version's daemon through the API
// contract (internal/testing/apicontract), and a restart of this bpfd under
// traffic, stopped as the kubelet stops a container (SIGTERM) or killed
// (SIGKILL), loses no packet either (TestRestartUnderTraffic).
//
// Everything runs for real as processes on this machine's kernel; the tests
// are privileged (testutil.RequirePrivileged) and `make test` runs them.
package upgrade
