package verify

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// Authority is one signer a rule trusts: a public key, or certificates
// chaining to a trusted root with a given identity. Exactly one of Key and
// Keyless is set.
type Authority struct {
	// Key is the trusted public key.
	Key *PublicKey
	// KeySource says where the key came from: its file, "inline" or "--key".
	KeySource string
	// Keyless trusts certificates by issuer and identity.
	Keyless *Keyless
}

// Keyless trusts signing certificates issued by a certificate authority of
// a Sigstore trusted root to a given identity, as Fulcio issues them.
type Keyless struct {
	// TrustedRoot is the trusted_root.json file: certificate authorities
	// and, optionally, transparency logs, timestamp authorities and CT logs.
	TrustedRoot string
	// Issuer or IssuerRegExp must match the certificate's OIDC issuer.
	Issuer, IssuerRegExp string
	// Subject or SubjectRegExp must match its subject alternative name.
	Subject, SubjectRegExp string

	root       *root.TrustedRoot
	rootDigest string
	identity   sgverify.CertificateIdentity
}

// String describes the authority for reports.
func (a *Authority) String() string {
	if a.Key != nil {
		return fmt.Sprintf("key %s (%s)", a.Key.Fingerprint(), a.KeySource)
	}
	k := a.Keyless
	issuer, subject := k.Issuer, k.Subject
	if issuer == "" {
		issuer = "~" + k.IssuerRegExp
	}
	if subject == "" {
		subject = "~" + k.SubjectRegExp
	}
	return fmt.Sprintf("keyless subject %s issuer %s (%s)", subject, issuer, k.TrustedRoot)
}

// accepts reports whether a vouches for s; when it does not, why says so
// (empty when a's kind does not apply to s).
func (a *Authority) accepts(s *Signature) (ok bool, why string) {
	if a.Key != nil {
		return a.Key.verify(s.sig, s.message), ""
	}
	if s.cert == nil {
		return false, ""
	}
	return a.Keyless.accepts(s)
}

// accepts checks s's certificate chain against the trusted root, at the
// time a verified transparency-log entry or timestamp gives or else now, and
// its identity against k's.
func (k *Keyless) accepts(s *Signature) (bool, string) {
	var opts []sgverify.VerifierOption
	entries, err := s.entity.TlogEntries()
	if err != nil {
		return false, fmt.Sprintf("transparency-log entries: %v", err)
	}
	stamps, err := s.entity.Timestamps()
	if err != nil {
		return false, fmt.Sprintf("signed timestamps: %v", err)
	}
	atNow := false
	switch {
	case len(entries) > 0 && len(k.root.RekorLogs()) > 0:
		opts = append(opts, sgverify.WithTransparencyLog(1), sgverify.WithObserverTimestamps(1))
	case len(stamps) > 0 && len(k.root.TimestampingAuthorities()) > 0:
		opts = append(opts, sgverify.WithSignedTimestamps(1))
	default:
		opts = append(opts, sgverify.WithCurrentTime())
		atNow = true
	}
	if len(k.root.CTLogs()) > 0 {
		opts = append(opts, sgverify.WithSignedCertificateTimestamps(1))
	}
	v, err := sgverify.NewVerifier(k.root, opts...)
	if err != nil {
		return false, fmt.Sprintf("trusted root %s: %v", k.TrustedRoot, err)
	}
	artifact := sgverify.WithoutArtifactUnsafe() // the statement's subject is checked by the caller
	if s.artifact != nil {
		artifact = sgverify.WithArtifact(bytes.NewReader(s.artifact))
	}
	res, err := v.Verify(s.entity, sgverify.NewPolicy(artifact, sgverify.WithoutIdentitiesUnsafe()))
	if err != nil {
		why := err.Error()
		if atNow {
			why = k.diagnose(s.cert, time.Now(), err)
		}
		return false, fmt.Sprintf("certificate not trusted by %s: %s", k.TrustedRoot, why)
	}
	if err := k.identity.Verify(*res.Signature.Certificate); err != nil {
		return false, fmt.Sprintf("certificate identity does not match: %v", err)
	}
	return true, ""
}

// diagnose explains why cert does not verify at t, the current time, better
// than sigstore-go's err does: expiry, or the certificate authorities' own
// errors.
func (k *Keyless) diagnose(cert *x509.Certificate, t time.Time, err error) string {
	switch {
	case t.After(cert.NotAfter):
		return fmt.Sprintf("certificate expired at %s (the signature carries no trusted timestamp, so it is checked at the current time)", cert.NotAfter.UTC().Format(time.RFC3339))
	case t.Before(cert.NotBefore):
		return fmt.Sprintf("certificate not valid before %s", cert.NotBefore.UTC().Format(time.RFC3339))
	}
	var whys []string
	for _, ca := range k.root.FulcioCertificateAuthorities() {
		if _, caErr := ca.Verify(cert, t); caErr != nil {
			whys = append(whys, caErr.Error())
		}
	}
	if len(whys) == 0 {
		return err.Error()
	}
	return strings.Join(whys, "; ")
}

// certificateIdentity returns the Fulcio identity recorded in cert.
func certificateIdentity(cert *x509.Certificate) Identity {
	sum, err := certificate.SummarizeCertificate(cert)
	if err != nil {
		return Identity{Subject: "(unreadable: " + err.Error() + ")"}
	}
	return Identity{Subject: sum.SubjectAlternativeName, Issuer: sum.Extensions.Issuer}
}

// verifiesWithOwnCertificate reports whether s's signature verifies with
// the key of its own certificate.
func verifiesWithOwnCertificate(s *Signature) bool {
	v, err := signature.LoadDefaultVerifier(s.cert.PublicKey, options.WithED25519ph())
	if err != nil {
		return false
	}
	return v.VerifySignature(bytes.NewReader(s.sig), bytes.NewReader(s.message)) == nil
}
