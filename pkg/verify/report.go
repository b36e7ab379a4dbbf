package verify

import (
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// Decision is what a trust policy decided about an artifact.
type Decision string

// The decisions. Every one but DecisionDeny admits the artifact.
const (
	// DecisionAllow: enough trusted signatures over the digest.
	DecisionAllow Decision = "allow"
	// DecisionAllowUnsigned: admitted without signatures, by a rule with
	// allowUnsigned or by the policy's default.
	DecisionAllowUnsigned Decision = "allow-unsigned"
	// DecisionWarn: verification failed but the rule is in warn mode.
	DecisionWarn Decision = "warn"
	// DecisionDeny: refused; Verify returns a *DenialError with the report.
	DecisionDeny Decision = "deny"
)

// Reason says, in a word a program can match, why a signature did not count
// or why an artifact was denied.
type Reason string

// The reasons.
const (
	// ReasonUnsigned: no signature at all was found.
	ReasonUnsigned Reason = "unsigned"
	// ReasonSignatureInvalid: the signature does not verify with the key or
	// certificate it names: altered or corrupted.
	ReasonSignatureInvalid Reason = "signature-invalid"
	// ReasonUntrustedKey: made by a key or certificate identity that no
	// authority of the rule trusts.
	ReasonUntrustedKey Reason = "untrusted-key"
	// ReasonOutOfScope: no rule covers the image, or the signer is trusted
	// only by a rule that does not govern it: a rule for other images, or a
	// later rule outranked by the first rule whose images match.
	ReasonOutOfScope Reason = "out-of-scope"
	// ReasonDigestMismatch: a trusted signature over another digest (replayed
	// from another artifact, or stored under another subject).
	ReasonDigestMismatch Reason = "digest-mismatch"
	// ReasonUnreadableSignature: a signature manifest, layer or bundle that
	// does not parse, is truncated, or has the wrong media type.
	ReasonUnreadableSignature Reason = "unreadable-signature"
	// ReasonThresholdNotMet: valid signatures, but from fewer distinct
	// authorities than the rule's threshold.
	ReasonThresholdNotMet Reason = "threshold-not-met"
	// ReasonAttestationMissing: a required attestation was not found, or
	// not from enough of the authorities the requirement trusts.
	ReasonAttestationMissing Reason = "attestation-missing"
	// ReasonAttestationConditions: a required attestation by a trusted
	// authority, whose predicate fails the requirement's conditions (another
	// builder, build type or source repository).
	ReasonAttestationConditions Reason = "attestation-conditions-unmet"
	// ReasonNamespaceNotAdmitted: the request came from a Kubernetes
	// namespace that the governing rule does not admit (or no rule governs
	// the image, and the default never admits a namespace's request). Warn
	// mode does not soften it: it is who may load, not whether the
	// signatures hold.
	ReasonNamespaceNotAdmitted Reason = "namespace-not-admitted"
)

// reasonPriority orders the reasons signatures fail for, from the most to
// the least telling; unless some signatures were valid (threshold-not-met)
// or there were none (unsigned), a denial names the first one present.
var reasonPriority = []Reason{
	ReasonDigestMismatch, ReasonOutOfScope, ReasonSignatureInvalid,
	ReasonUntrustedKey, ReasonUnreadableSignature,
}

// Report is the outcome of verifying one artifact against a policy. Its JSON
// form is the stable output of `bpfctl-image verify --output json`
// (docs/policy.md); fields are only ever added.
type Report struct {
	// Image is the subject's name, as rules match it.
	Image string `json:"image"`
	// Digest is the manifest digest verified.
	Digest digest.Digest `json:"digest,omitempty"`
	// Namespace is the Kubernetes namespace the artifact was verified for;
	// empty for a request without one.
	Namespace string `json:"namespace,omitempty"`
	// Policy is the fingerprint of the policy applied.
	Policy string `json:"policy"`
	// Rule is the name of the rule that governed the image; empty when none
	// matched and the default applied.
	Rule string `json:"rule,omitempty"`
	// Mode and Threshold are the rule's.
	Mode      Mode `json:"mode,omitempty"`
	Threshold int  `json:"threshold,omitempty"`
	// Signatures lists every signature found, in both formats.
	Signatures []SignatureResult `json:"signatures"`
	// Decision is the verdict.
	Decision Decision `json:"decision"`
	// Reason and Findings explain a deny or warn decision: the main reason
	// and every distinct one found.
	Reason   Reason    `json:"reason,omitempty"`
	Findings []Finding `json:"findings,omitempty"`
	// AllowedProgramTypes limits the program kinds that may be loaded from
	// the artifact; empty means any. The daemon enforces it at load time.
	AllowedProgramTypes []progtype.Kind `json:"allowedProgramTypes,omitempty"`
	// Requirements are the outcomes of the rule's attestation requirements,
	// in policy order; absent when it has none.
	Requirements []RequirementResult `json:"requirements,omitempty"`
}

// SignatureResult is the verdict on one signature.
type SignatureResult struct {
	// Format is how the signature is stored.
	Format Format `json:"format"`
	// PredicateType is an attestation's predicate type.
	PredicateType string `json:"predicateType,omitempty"`
	// Manifest and Layer locate it: the referrer or ".sig" manifest and the
	// layer within.
	Manifest digest.Digest `json:"manifest,omitempty"`
	Layer    digest.Digest `json:"layer,omitempty"`
	// Key is the fingerprint of the key that verified it or, when none did,
	// of the key a bundle names.
	Key string `json:"key,omitempty"`
	// Identity is the signing certificate's identity, for certificate
	// (keyless) signatures.
	Identity *Identity `json:"identity,omitempty"`
	// Authority describes the policy authority that accepted it; set only
	// on a valid signature.
	Authority string `json:"authority,omitempty"`
	// Valid reports whether the signature counts toward the rule's
	// threshold.
	Valid bool `json:"valid"`
	// Reason and Detail say why it does not count.
	Reason Reason `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`

	// authority is the index of the accepting authority in the rule.
	authority int
}

// Identity is a signing certificate's identity, as Fulcio issues them.
type Identity struct {
	// Subject is the certificate's subject alternative name (an email
	// address or URI).
	Subject string `json:"subject"`
	// Issuer is the OIDC issuer recorded in the certificate.
	Issuer string `json:"issuer"`
}

// String returns "SUBJECT (issuer ISSUER)".
func (id Identity) String() string { return fmt.Sprintf("%s (issuer %s)", id.Subject, id.Issuer) }

// Finding is one reason behind a decision.
type Finding struct {
	Reason Reason `json:"reason"`
	Detail string `json:"detail"`
}

// Allowed reports whether the decision admits the artifact.
func (r *Report) Allowed() bool { return r.Decision != DecisionDeny }

// Signers describes who made the valid signatures: key fingerprints and
// certificate identities, without repeats.
func (r *Report) Signers() []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range r.Signatures {
		if !s.Valid {
			continue
		}
		who := s.Key
		if s.Identity != nil {
			who = s.Identity.String()
		}
		if !seen[who] {
			seen[who] = true
			out = append(out, who)
		}
	}
	return out
}

// DenialError is a trust policy's refusal of an artifact: a verdict, not a
// failure to verify. Callers tell it apart with errors.As (bpfctl-image exits
// 3 on it) and read the machine-readable Reason.
type DenialError struct {
	// Subject is NAME@DIGEST of the artifact denied.
	Subject string
	// Reason is the main reason, Detail its explanation.
	Reason Reason
	Detail string
	// Report is the full report.
	Report *Report
}

func (e *DenialError) Error() string {
	return fmt.Sprintf("%s: denied by the trust policy: %s: %s", e.Subject, e.Reason, e.Detail)
}
