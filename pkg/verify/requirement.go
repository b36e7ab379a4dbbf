package verify

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// AttestationRequirement is an attestation a rule requires of its images,
// besides their signatures: an in-toto statement of a predicate type, signed
// by authorities of its own, whose predicate meets simple conditions.
type AttestationRequirement struct {
	// Name identifies the requirement in reports; default the predicate
	// type.
	Name string
	// PredicateType is the statement's predicate type (a URI).
	PredicateType string
	// Authorities are the keys and certificate identities trusted to make
	// the attestation; Threshold how many distinct ones must each have made
	// a valid one (default 1).
	Authorities []*Authority
	Threshold   int
	// Conditions the predicate must meet (SLSA provenance only).
	Conditions Conditions
}

// Conditions are conditions on a SLSA provenance predicate. An empty field
// is no condition.
type Conditions struct {
	// BuilderID must equal the builder's id: builder.id (v0.2),
	// runDetails.builder.id (v1).
	BuilderID string
	// BuildType must equal buildType (v0.2), buildDefinition.buildType (v1).
	BuildType string
	// SourceRepository is an image-style glob over the source repository:
	// the URI of invocation.configSource (v0.2; else the first material),
	// or of the first buildDefinition.resolvedDependencies entry (v1),
	// without its "@revision" suffix, e.g. "git+https://github.com/example/*".
	SourceRepository string

	source *regexp.Regexp
}

func (c Conditions) empty() bool {
	return c.BuilderID == "" && c.BuildType == "" && c.SourceRepository == ""
}

// isSLSAProvenance reports whether predicate type uri is SLSA provenance,
// whose predicate Conditions read.
func isSLSAProvenance(uri string) bool {
	return uri == PredicateSLSAProvenance02 || uri == PredicateSLSAProvenance1 || uri == "https://slsa.dev/provenance/v0.1"
}

// slsaFacts are what Conditions check, read from a SLSA provenance
// predicate.
type slsaFacts struct {
	builderID, buildType, source string
}

// readSLSA reads the facts of a SLSA provenance predicate of predicate type
// uri.
func readSLSA(uri string, predicate json.RawMessage) (slsaFacts, error) {
	var f slsaFacts
	var object map[string]json.RawMessage
	if err := json.Unmarshal(predicate, &object); err != nil {
		return f, fmt.Errorf("the SLSA provenance predicate is not a JSON object")
	}
	if uri == PredicateSLSAProvenance1 {
		var p struct {
			BuildDefinition struct {
				BuildType            string `json:"buildType"`
				ResolvedDependencies []struct {
					URI string `json:"uri"`
				} `json:"resolvedDependencies"`
			} `json:"buildDefinition"`
			RunDetails struct {
				Builder struct {
					ID string `json:"id"`
				} `json:"builder"`
			} `json:"runDetails"`
		}
		if err := json.Unmarshal(predicate, &p); err != nil {
			return f, fmt.Errorf("SLSA provenance v1 predicate: %w", err)
		}
		f.builderID, f.buildType = p.RunDetails.Builder.ID, p.BuildDefinition.BuildType
		if len(p.BuildDefinition.ResolvedDependencies) > 0 {
			f.source = p.BuildDefinition.ResolvedDependencies[0].URI
		}
	} else {
		var p struct {
			Builder struct {
				ID string `json:"id"`
			} `json:"builder"`
			BuildType  string `json:"buildType"`
			Invocation struct {
				ConfigSource struct {
					URI string `json:"uri"`
				} `json:"configSource"`
			} `json:"invocation"`
			Materials []struct {
				URI string `json:"uri"`
			} `json:"materials"`
		}
		if err := json.Unmarshal(predicate, &p); err != nil {
			return f, fmt.Errorf("SLSA provenance predicate: %w", err)
		}
		f.builderID, f.buildType, f.source = p.Builder.ID, p.BuildType, p.Invocation.ConfigSource.URI
		if f.source == "" && len(p.Materials) > 0 {
			f.source = p.Materials[0].URI
		}
	}
	f.source = withoutRevision(f.source)
	return f, nil
}

// withoutRevision drops an "@revision" suffix from a source URI
// ("git+https://github.com/example/bpf@refs/heads/main"): from the first "@"
// in its path (an "@" before the path holds user information).
func withoutRevision(uri string) string {
	path := 0
	if i := strings.Index(uri, "://"); i >= 0 {
		if j := strings.Index(uri[i+3:], "/"); j >= 0 {
			path = i + 3 + j
		} else {
			return uri
		}
	}
	if at := strings.Index(uri[path:], "@"); at >= 0 {
		return uri[:path+at]
	}
	return uri
}

// check returns why the predicate fails the conditions, or "".
func (c Conditions) check(predicateType string, predicate json.RawMessage) string {
	if c.empty() {
		return ""
	}
	f, err := readSLSA(predicateType, predicate)
	if err != nil {
		return err.Error()
	}
	switch {
	case c.BuilderID != "" && f.builderID != c.BuilderID:
		return fmt.Sprintf("built by builder %q, not %q", f.builderID, c.BuilderID)
	case c.BuildType != "" && f.buildType != c.BuildType:
		return fmt.Sprintf("build type %q, not %q", f.buildType, c.BuildType)
	case c.source != nil && !matchName(c.source, f.source):
		return fmt.Sprintf("source repository %q does not match %q", f.source, c.SourceRepository)
	}
	return ""
}

// RequirementResult is the outcome of one attestation requirement.
type RequirementResult struct {
	// Name and PredicateType are the requirement's; Threshold how many
	// distinct authorities must have made a valid attestation.
	Name          string `json:"name"`
	PredicateType string `json:"predicateType"`
	Threshold     int    `json:"threshold"`
	// Satisfied reports whether enough valid attestations were found.
	Satisfied bool `json:"satisfied"`
	// Reason and Detail say why not.
	Reason Reason `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Attestations are the verdicts on every attestation of the predicate
	// type found, and on those that could not be read.
	Attestations []SignatureResult `json:"attestations"`
}

// judgeRequirements judges the attestations found for subject against each
// of rule's requirements.
func (v *Verifier) judgeRequirements(subject Subject, rule *Rule, atts []*Signature) []RequirementResult {
	var out []RequirementResult
	for _, req := range rule.Attestations {
		res := RequirementResult{Name: req.Name, PredicateType: req.PredicateType, Threshold: req.Threshold, Attestations: []SignatureResult{}}
		trusted := map[int]bool{}
		for _, s := range atts {
			if s.err == nil && s.predicateType != req.PredicateType {
				continue
			}
			r := judgeAttestation(subject, req, s)
			if r.Valid {
				trusted[r.authority] = true
			}
			res.Attestations = append(res.Attestations, r)
		}
		if len(trusted) >= req.Threshold {
			res.Satisfied = true
		} else {
			res.Reason, res.Detail = requirementShortfall(subject, req, res.Attestations, len(trusted))
		}
		out = append(out, res)
	}
	return out
}

// requirementShortfall explains an unmet requirement: the conditions a
// trusted attestation failed, else what is missing.
func requirementShortfall(subject Subject, req *AttestationRequirement, results []SignatureResult, trusted int) (Reason, string) {
	for _, r := range results {
		if r.Reason == ReasonAttestationConditions {
			return r.Reason, fmt.Sprintf("requirement %q: %s", req.Name, r.Detail)
		}
	}
	what := fmt.Sprintf("no %s attestation of %s", req.PredicateType, subject.Descriptor.Digest)
	if trusted > 0 {
		what = fmt.Sprintf("valid %s attestations from %d of the %d distinct authorities", req.PredicateType, trusted, req.Threshold)
	}
	var seen []string
	for _, r := range results {
		if !r.Valid && !slices.Contains(seen, string(r.Reason)) {
			seen = append(seen, string(r.Reason))
		}
	}
	detail := fmt.Sprintf("requirement %q: %s signed by %s", req.Name, what, authorityList(req.Authorities))
	if len(seen) > 0 {
		detail += fmt.Sprintf(" (%d found of that type: %s)", len(results), strings.Join(seen, ", "))
	}
	return ReasonAttestationMissing, detail
}

func authorityList(as []*Authority) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	if len(s) == 1 {
		return s[0]
	}
	return "one of " + strings.Join(s, "; ")
}

// judgeAttestation decides whether one attestation counts for req.
func judgeAttestation(subject Subject, req *AttestationRequirement, s *Signature) SignatureResult {
	res := SignatureResult{Format: s.Format, Manifest: s.Manifest, Layer: s.Layer, PredicateType: s.predicateType}
	if s.err != nil {
		res.Reason, res.Detail = s.problem, s.err.Error()
		return res
	}
	if s.cert != nil {
		id := certificateIdentity(s.cert)
		res.Identity = &id
		if !verifiesWithOwnCertificate(s) {
			res.Reason, res.Detail = ReasonSignatureInvalid, fmt.Sprintf("attestation does not verify with the key of its own certificate (%s)", id)
			return res
		}
	} else {
		res.Key = fingerprintOfHint(s.hint)
	}
	index := -1
	var whys []string
	for i, a := range req.Authorities {
		ok, why := a.accepts(s)
		if ok {
			index = i
			break
		}
		if why != "" {
			whys = append(whys, why)
		}
	}
	if index < 0 {
		res.Reason = ReasonUntrustedKey
		switch {
		case len(whys) > 0:
			res.Detail = fmt.Sprintf("attestation by certificate for %s: %s", res.Identity, strings.Join(whys, "; "))
		case res.Identity != nil:
			res.Detail = fmt.Sprintf("attestation by certificate for %s, which requirement %q does not trust", res.Identity, req.Name)
		case res.Key != "":
			res.Detail = fmt.Sprintf("attestation signed by key %s, which requirement %q does not trust", res.Key, req.Name)
		default:
			res.Detail = fmt.Sprintf("attestation does not verify with any key requirement %q trusts", req.Name)
		}
		return res
	}
	a := req.Authorities[index]
	if a.Key != nil {
		res.Key = a.Key.Fingerprint()
	}
	if !s.claims(subject.Descriptor.Digest) {
		res.Reason, res.Detail = ReasonDigestMismatch, fmt.Sprintf("attestation by %s is about %s, not %s", a, joinDigests(s), subject.Descriptor.Digest)
		return res
	}
	if why := req.Conditions.check(s.predicateType, s.predicate); why != "" {
		res.Reason, res.Detail = ReasonAttestationConditions, fmt.Sprintf("attestation by %s: %s", a, why)
		return res
	}
	res.Valid, res.authority, res.Authority = true, index, a.String()
	return res
}
