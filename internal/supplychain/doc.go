// Package supplychain is bpfd's supply chain: it resolves an artifact
// reference to a digest, pulls the artifact with its signatures into a
// content-addressed cache as the pull policy says, and verifies it against
// the node's trust policy (pkg/artifact and pkg/verify). What it admits,
// the ELF objects for this host with the verdict that admitted them, goes
// back to its caller, bpfd's daemon, which hands it to pkg/runtime: the
// supply chain never loads anything, and the runtime never sees images or
// signatures.
//
// Trust is bound to where the bytes came from: the policy judges the name
// an artifact was fetched from, with the signatures and attestations that
// origin served, which the cache keeps apart per origin. A name no rule
// covers is refused before anything is read, and an artifact's layers are
// pulled and read only once its signatures admitted it. Pulls stream into
// the cache within artifact.Limits; Collect keeps the cache within its size
// without removing what the caller says loaded programs need; Rejudge
// judges an artifact again, offline, under the policy in force.
//
// Chain.Fetch returns a Result even when it fails, filled as far as it got
// (the digest resolved, the trust policy's verdict, how the cache served
// it), so that the caller's audit log and metrics say what was decided
// without a note carried in a context. Errors are typed: a policy denial
// is a *verify.DenialError, a failure to resolve, pull or read an artifact
// a *PullError.
package supplychain
