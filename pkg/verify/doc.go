// Package verify signs bytecode artifacts and verifies their signatures,
// offline, against a public key or a trust policy. It speaks cosign's two
// formats: Sigstore bundles stored as OCI referrers and the legacy
// simple-signing ".sig" manifests. The formats and the trust policy are
// specified in docs/policy.md.
//
// Keys are cosign's: GenerateKeyPair, LoadPrivateKey, ParsePublicKey. Sign
// writes a signature of a manifest digest through any oras-go store (a
// registry repository, an OCI layout, an opened archive: see Destination).
//
// Verification follows sigstore-go's split between trust material and the
// artifact at hand. A Policy (LoadPolicy, ParsePolicy, or KeyPolicy for a
// single key) holds the keys, trusted roots and per-image rules; a Verifier
// applies it. FetchSignatures reads every signature stored for a digest from
// a Source; Verifier.Verify judges them, without I/O, and returns a Report.
// VerifyArtifact does both. A refusal is a *DenialError carrying the report
// and a Reason a program can match; other errors are failures to verify.
//
// The package contacts nothing but the store it is handed: no transparency
// log, no certificate authority, no TUF repository.
package verify
