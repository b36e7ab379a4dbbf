// Package supplychain is bpfd's supply chain: it resolves an artifact
// reference to a digest, pulls the artifact with its signatures into a
// content-addressed cache as the pull policy says, and verifies it against
// the node's trust policy (pkg/artifact and pkg/verify). What it admits,
// the ELF objects for this host with the verdict that admitted them, goes
// back to its caller, bpfd's daemon, which hands it to pkg/runtime: the
// supply chain never loads anything, and the runtime never sees images or
// signatures.
//
// Chain.Fetch returns a Result even when it fails, filled as far as it got
// (the digest resolved, the trust policy's verdict, how the cache served
// it), so that the caller's audit log and metrics say what was decided
// without a note carried in a context. Errors are typed: a policy denial
// is a *verify.DenialError, a failure to resolve, pull or read an artifact
// a *PullError.
package supplychain
