package verify

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// VerifierOptions configures NewVerifier. The zero value logs nothing.
type VerifierOptions struct {
	// Logger, if set, receives a warning each time the policy admits an
	// artifact without verified signatures (warn mode, allow-unsigned).
	Logger *slog.Logger
}

// Verifier judges artifacts' signatures against a trust policy: the trust
// material (keys, trusted roots) and per-image rules are the policy's; the
// artifact and its signatures come with each call. It is safe for
// concurrent use.
type Verifier struct {
	policy *Policy
	log    *slog.Logger
}

// NewVerifier returns a Verifier for policy.
func NewVerifier(policy *Policy, opts VerifierOptions) *Verifier {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Verifier{policy: policy, log: log}
}

// Policy returns the verifier's policy.
func (v *Verifier) Policy() *Policy { return v.policy }

// VerifyArtifact reads subject's signatures from src and judges them, like
// FetchSignatures followed by Verify; when the rule governing subject
// requires attestations it reads those from src too (FetchAttestations), so
// signatures and attestations always come from the same store. A local file
// (a "file:" name) has no signatures to read; src may then be nil.
func (v *Verifier) VerifyArtifact(ctx context.Context, src Source, subject Subject) (*Report, error) {
	var sigs, atts []*Signature
	if !subject.local() {
		if err := subject.Descriptor.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("subject %s: digest: %w", subject.Name, err)
		}
		var err error
		if sigs, err = FetchSignatures(ctx, src, subject.Descriptor); err != nil {
			return nil, fmt.Errorf("signatures of %s: %w", subject, err)
		}
		if rule := v.policy.match(subject.Name); rule != nil && len(rule.Attestations) > 0 {
			if atts, err = FetchAttestations(ctx, src, subject.Descriptor); err != nil {
				return nil, fmt.Errorf("attestations of %s: %w", subject, err)
			}
		}
	}
	return v.VerifyEvidence(subject, sigs, atts)
}

// Verify judges the signatures sigs found for subject, with no attestations
// (a rule that requires some denies). It always returns the report; when the
// policy denies the artifact it also returns a *DenialError carrying it.
func (v *Verifier) Verify(subject Subject, sigs []*Signature) (*Report, error) {
	return v.VerifyEvidence(subject, sigs, nil)
}

// VerifyEvidence judges the signatures sigs and attestations atts
// (FetchAttestations) found for subject: the signatures against the
// governing rule's authorities and threshold, the attestations against each
// of its requirements. It returns the report, and a *DenialError when the
// policy denies the artifact.
func (v *Verifier) VerifyEvidence(subject Subject, sigs, atts []*Signature) (*Report, error) {
	rule := v.policy.match(subject.Name)
	report := &Report{
		Image:      subject.Name,
		Digest:     subject.Descriptor.Digest,
		Namespace:  subject.Namespace,
		Policy:     v.policy.Fingerprint(),
		Signatures: make([]SignatureResult, 0, len(sigs)),
	}
	for _, s := range sigs {
		report.Signatures = append(report.Signatures, v.judge(subject, rule, s))
	}
	if rule != nil {
		report.Rule, report.Mode, report.Threshold = rule.Name, rule.Mode, rule.Threshold
		report.AllowedProgramTypes = slices.Clone(rule.ProgramTypes)
		report.Requirements = v.judgeRequirements(subject, rule, atts)
	}

	if f, ok := namespaceRefusal(v.policy, subject, rule); !ok {
		// Who may load comes before whether the signatures hold, and no
		// mode softens it; the signatures' findings still go in the report.
		findings := []Finding{f}
		if trusted := trustedAuthorities(report); rule != nil && !rule.AllowUnsigned && trusted < rule.Threshold {
			findings = append(findings, v.findings(subject, rule, report, trusted)...)
		}
		return v.deny(subject, report, findings)
	}
	switch {
	case rule == nil && subject.local():
		return v.deny(subject, report, []Finding{{ReasonOutOfScope, fmt.Sprintf("no rule covers local file %s; local files load only under a rule that allows them unsigned", strings.TrimPrefix(subject.Name, "file:"))}})
	case rule == nil && v.policy.Default == DefaultAllowUnsigned:
		report.Decision = DecisionAllowUnsigned
		v.log.Warn("admitting an image no rule covers, unverified, by the policy's default: allow-unsigned", "image", subject.Name, "digest", subject.Descriptor.Digest, "policy", report.Policy)
		return report, nil
	case rule == nil:
		return v.deny(subject, report, []Finding{{ReasonOutOfScope, fmt.Sprintf("no rule of the policy covers %s", subject.Name)}})
	case rule.AllowUnsigned:
		report.Decision = DecisionAllowUnsigned
		return report, nil
	}

	var findings []Finding
	if trusted := trustedAuthorities(report); trusted < rule.Threshold {
		findings = v.findings(subject, rule, report, trusted)
	}
	for _, r := range report.Requirements {
		if !r.Satisfied {
			findings = append(findings, Finding{r.Reason, r.Detail})
		}
	}
	if len(findings) == 0 {
		report.Decision = DecisionAllow
		return report, nil
	}
	if rule.Mode == ModeWarn {
		report.Decision = DecisionWarn
		report.Reason, report.Findings = findings[0].Reason, findings
		v.log.Warn("admitting an image that failed verification: its rule is in warn mode", "image", subject.Name, "digest", subject.Descriptor.Digest, "rule", rule.Name, "reason", findings[0].Reason, "detail", findings[0].Detail)
		return report, nil
	}
	return v.deny(subject, report, findings)
}

// trustedAuthorities counts the distinct authorities that accepted a valid
// signature in report.
func trustedAuthorities(report *Report) int {
	trusted := map[int]bool{}
	for _, r := range report.Signatures {
		if r.Valid {
			trusted[r.authority] = true
		}
	}
	return len(trusted)
}

// namespaceRefusal checks that rule, governing subject (nil when none does),
// admits subject's namespace; when it does not, it returns the finding that
// explains why.
func namespaceRefusal(p *Policy, subject Subject, rule *Rule) (Finding, bool) {
	ns := subject.Namespace
	switch {
	case ns == "":
		return Finding{}, true
	case rule == nil && p.Default == DefaultAllowUnsigned && !subject.local():
		return Finding{ReasonNamespaceNotAdmitted, fmt.Sprintf("no rule covers %s, and the policy's default (allow-unsigned) admits only requests without a namespace, not one from namespace %q", subject.Name, ns)}, false
	case rule == nil:
		return Finding{}, true // denied as out of scope, as for anyone
	case rule.admits(ns):
		return Finding{}, true
	case len(rule.Namespaces) == 0:
		return Finding{ReasonNamespaceNotAdmitted, fmt.Sprintf("rule %q governs %s (the first rule whose images match it: %s) and lists no namespaces: it admits only requests without a namespace, not one from namespace %q", rule.Name, subject.Name, rule.matchingPattern(subject.Name), ns)}, false
	default:
		return Finding{ReasonNamespaceNotAdmitted, fmt.Sprintf("rule %q governs %s (the first rule whose images match it: %s) and admits namespaces %s, not %q", rule.Name, subject.Name, rule.matchingPattern(subject.Name), strings.Join(rule.Namespaces, ", "), ns)}, false
	}
}

// findings explains why the signatures of subject fall short of rule's
// threshold, the most telling reason first: too few signers when some
// signatures were valid, else the first of reasonPriority found.
func (v *Verifier) findings(subject Subject, rule *Rule, report *Report, trusted int) []Finding {
	var out []Finding
	seen := map[Finding]bool{}
	for _, s := range report.Signatures {
		f := Finding{s.Reason, s.Detail}
		if !s.Valid && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	slices.SortStableFunc(out, func(a, b Finding) int {
		return slices.Index(reasonPriority, a.Reason) - slices.Index(reasonPriority, b.Reason)
	})
	var first Finding
	switch {
	case subject.local():
		first = Finding{ReasonUnsigned, fmt.Sprintf("local file %s carries no signatures and rule %q requires them", strings.TrimPrefix(subject.Name, "file:"), rule.Name)}
	case len(report.Signatures) == 0:
		first = Finding{ReasonUnsigned, fmt.Sprintf("no signatures for %s (no Sigstore bundle referrers, no %s tag)", subject.Descriptor.Digest, LegacySignatureTag(subject.Descriptor.Digest))}
	case trusted > 0:
		first = Finding{ReasonThresholdNotMet, fmt.Sprintf("valid signatures from %d of the %d distinct authorities rule %q requires", trusted, rule.Threshold, rule.Name)}
	default:
		return out
	}
	return append([]Finding{first}, out...)
}

func (v *Verifier) deny(subject Subject, report *Report, findings []Finding) (*Report, error) {
	report.Decision = DecisionDeny
	report.Reason, report.Findings = findings[0].Reason, findings
	return report, &DenialError{Subject: subject.String(), Reason: findings[0].Reason, Detail: findings[0].Detail, Report: report}
}

// judge decides whether one signature counts for subject under rule.
func (v *Verifier) judge(subject Subject, rule *Rule, s *Signature) SignatureResult {
	res := SignatureResult{Format: s.Format, Manifest: s.Manifest, Layer: s.Layer}
	if s.err != nil {
		res.Reason, res.Detail = s.problem, s.err.Error()
		return res
	}
	if s.cert != nil {
		id := certificateIdentity(s.cert)
		res.Identity = &id
		if !verifiesWithOwnCertificate(s) {
			res.Reason, res.Detail = ReasonSignatureInvalid, fmt.Sprintf("signature does not verify with the key of its own certificate (%s)", id)
			return res
		}
	} else {
		res.Key = fingerprintOfHint(s.hint)
	}

	// The rule's own authorities first; then the others', to tell a signer
	// trusted elsewhere (out of scope) from one trusted nowhere.
	var whys []string
	owner, index := (*Rule)(nil), -1
	if rule != nil {
		for i, a := range rule.Authorities {
			ok, why := a.accepts(s)
			if ok {
				owner, index = rule, i
				break
			}
			if why != "" {
				whys = append(whys, why)
			}
		}
	}
	for _, r := range v.policy.Rules {
		if owner != nil || r == rule {
			continue
		}
		for i, a := range r.Authorities {
			if ok, _ := a.accepts(s); ok {
				owner, index = r, i
				break
			}
		}
	}

	if owner != nil {
		// Authority names only the authority that accepted a valid
		// signature; a signature that does not count names the signer in
		// its detail.
		a := owner.Authorities[index]
		if a.Key != nil {
			res.Key = a.Key.Fingerprint()
		}
		switch {
		case !s.claims(subject.Descriptor.Digest):
			res.Reason, res.Detail = ReasonDigestMismatch, fmt.Sprintf("signed by %s, trusted by rule %q, but over %s, not %s", a, owner.Name, joinDigests(s), subject.Descriptor.Digest)
		case owner != rule:
			res.Reason, res.Detail = ReasonOutOfScope, outOfScope(subject, rule, owner, a)
		default:
			res.Valid, res.authority, res.Authority = true, index, a.String()
		}
		return res
	}

	ruleName := "the policy"
	if rule != nil {
		ruleName = fmt.Sprintf("rule %q", rule.Name)
	}
	switch {
	case s.cert != nil:
		res.Reason = ReasonUntrustedKey
		res.Detail = fmt.Sprintf("certificate for %s: no keyless authority of %s trusts it", res.Identity, ruleName)
		if len(whys) > 0 {
			res.Detail = fmt.Sprintf("certificate for %s: %s", res.Identity, strings.Join(whys, "; "))
		}
	case rule != nil && !slices.ContainsFunc(rule.Authorities, func(a *Authority) bool { return a.Key != nil }):
		res.Reason, res.Detail = ReasonUntrustedKey, fmt.Sprintf("signed with a key, but %s trusts only certificates (keyless)", ruleName)
	case res.Key != "" && v.policy.knowsKey(res.Key):
		res.Reason, res.Detail = ReasonSignatureInvalid, fmt.Sprintf("signature does not verify with key %s, which it names", res.Key)
	case res.Key != "":
		res.Reason, res.Detail = ReasonUntrustedKey, fmt.Sprintf("signed by key %s, which %s does not trust", res.Key, ruleName)
	default:
		res.Reason, res.Detail = ReasonUntrustedKey, fmt.Sprintf("does not verify with any key %s trusts (made by another key, or altered)", ruleName)
	}
	return res
}

// outOfScope explains why a signature by a, an authority of rule owner,
// does not count for subject, which rule governs (or no rule does). Rules
// apply by first match: when owner's images include subject too, owner comes
// after rule and is never consulted.
func outOfScope(subject Subject, rule, owner *Rule, a *Authority) string {
	var governs string
	if rule == nil {
		governs = fmt.Sprintf("no rule covers %s", subject.Name)
	} else {
		governs = fmt.Sprintf("rule %q governs %s (the first rule whose images match it: %s) and does not trust this signer", rule.Name, subject.Name, rule.matchingPattern(subject.Name))
	}
	if owner.matches(subject.Name) {
		return fmt.Sprintf("signed by %s, which the later rule %q trusts; %s", a, owner.Name, governs)
	}
	return fmt.Sprintf("signed by %s, which only rule %q trusts, for other images (%s); %s", a, owner.Name, strings.Join(owner.Images, ", "), governs)
}

// knowsKey reports whether any authority of p is the key with fingerprint fp.
func (p *Policy) knowsKey(fp string) bool {
	for _, r := range p.Rules {
		for _, a := range r.Authorities {
			if a.Key != nil && a.Key.Fingerprint() == fp {
				return true
			}
		}
	}
	return false
}

func joinDigests(s *Signature) string {
	if len(s.claimed) == 0 {
		return "no digest"
	}
	out := make([]string, len(s.claimed))
	for i, d := range s.claimed {
		out[i] = d.String()
	}
	return strings.Join(out, ", ")
}
