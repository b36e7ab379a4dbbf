// Package verify signs bytecode artifacts and verifies their signatures,
// offline, against a public key or a trust policy. It speaks cosign's two
// formats: Sigstore bundles stored as OCI referrers and the legacy
// simple-signing ".sig" manifests. The trust policy is specified in
// docs/policy.md.
package verify
