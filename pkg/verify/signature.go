package verify

import (
	"crypto/x509"
	"encoding/json"
	"slices"

	"github.com/opencontainers/go-digest"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
)

// Signature is one signature found next to an artifact, read and parsed but
// not yet verified. FetchSignatures returns them; Verifier.Verify judges
// them.
type Signature struct {
	// Format is how the signature is stored.
	Format Format
	// Manifest is the digest of the manifest holding it: the bundle's
	// referrer manifest or the legacy ".sig" manifest.
	Manifest digest.Digest
	// Layer is the digest of its layer in that manifest.
	Layer digest.Digest

	// err says why the signature cannot count, and problem what kind of
	// reason that is (unreadable, or stored for another digest). The fields
	// below are unset when err is set.
	err     error
	problem Reason

	// message is what sig signs: the DSSE pre-authentication encoding of a
	// bundle's envelope, or a legacy signature's payload.
	message []byte
	sig     []byte
	// hint is a bundle's public-key hint (base64 SHA-256 of the key), if any.
	hint string
	// cert is the signing certificate of a keyless signature.
	cert *x509.Certificate
	// claimed lists the digests the signed content says it is about: the
	// in-toto statement's subjects or the payload's docker-manifest-digest.
	claimed []digest.Digest
	// entity is the signature as sigstore-go verifies a certificate chain:
	// the bundle itself, or a legacy signature recast as one.
	entity sgverify.SignedEntity
	// artifact is what sigstore-go checks a message signature against (the
	// legacy payload); nil for DSSE envelopes, whose statement is checked
	// here.
	artifact []byte
	// predicateType and predicate are the signed in-toto statement's (a
	// signature's is SignPredicateType); unset for legacy signatures.
	predicateType string
	predicate     json.RawMessage
}

// PredicateType returns the predicate type of the signed statement: that of
// an attestation, or SignPredicateType; "" for a legacy signature or one
// that could not be read.
func (s *Signature) PredicateType() string { return s.predicateType }

// Err returns why the signature could not be read or is stored for another
// digest, or nil.
func (s *Signature) Err() error { return s.err }

// unreadable returns a Signature that cannot count because of err.
func unreadable(format Format, manifest, layer digest.Digest, err error) *Signature {
	return &Signature{Format: format, Manifest: manifest, Layer: layer, err: err, problem: ReasonUnreadableSignature}
}

// claims reports whether the signed content names d.
func (s *Signature) claims(d digest.Digest) bool { return slices.Contains(s.claimed, d) }
