package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// The version and kind a trust policy file declares.
const (
	PolicyAPIVersion = "bpfd.io/v1alpha1"
	PolicyKind       = "TrustPolicy"
)

// DefaultAction is what a policy does with an OCI reference no rule covers.
type DefaultAction string

// The default actions.
const (
	// DefaultDeny refuses it (the default).
	DefaultDeny DefaultAction = "deny"
	// DefaultAllowUnsigned admits it without checking signatures; the
	// verifier logs a warning each time. It never admits local files.
	DefaultAllowUnsigned DefaultAction = "allow-unsigned"
)

// Mode is what a rule does when verification fails.
type Mode string

// The modes.
const (
	// ModeEnforce denies (the default).
	ModeEnforce Mode = "enforce"
	// ModeWarn admits with a warning: for rolling out a policy.
	ModeWarn Mode = "warn"
)

// Policy is a parsed and validated trust policy (docs/policy.md). Build it
// with LoadPolicy, ParsePolicy or KeyPolicy; treat it as read-only.
type Policy struct {
	// Default applies to OCI references no rule covers.
	Default DefaultAction
	// Rules in file order: the first whose images match a reference governs
	// it.
	Rules []*Rule

	fingerprint string
}

// Rule says who must have signed the images it covers.
type Rule struct {
	// Name identifies the rule in reports and logs; unique in the policy.
	Name string
	// Images are glob patterns over a reference's name (see Subject.Name):
	// `*` matches within a path segment, `**` across segments, `?` one
	// character, `[...]` a class.
	Images []string
	// Authorities are the keys and certificate identities trusted for the
	// images.
	Authorities []*Authority
	// Threshold is how many distinct authorities must have made a valid
	// signature (default 1).
	Threshold int
	// Mode is enforce (default) or warn.
	Mode Mode
	// AllowUnsigned admits the images without signatures (and without
	// authorities): the way to let local files load.
	AllowUnsigned bool
	// ProgramTypes, when set, are the only program kinds that may be loaded
	// from the images.
	ProgramTypes []progtype.Kind
	// Attestations are the attestations the images must carry besides
	// their signatures (require.attestations).
	Attestations []*AttestationRequirement
	// Namespaces are the Kubernetes namespaces whose requests the rule
	// admits (see Subject.Namespace); AnyNamespace alone admits every
	// namespace. Empty admits requests without a namespace only: the
	// node's operator and cluster-scoped configs, which every rule admits.
	Namespaces []string

	globs      []*regexp.Regexp
	imageLines []int // each pattern's line in the policy file; 0 when unknown
}

// matches reports whether one of r's image patterns matches name.
func (r *Rule) matches(name string) bool {
	return slices.ContainsFunc(r.globs, func(re *regexp.Regexp) bool { return matchName(re, name) })
}

// matchingPattern returns the first of r's image patterns that matches
// name, or "".
func (r *Rule) matchingPattern(name string) string {
	for i, re := range r.globs {
		if matchName(re, name) {
			return r.Images[i]
		}
	}
	return ""
}

// AnyNamespace, as a rule's only namespace, admits every namespace.
const AnyNamespace = "*"

// admits reports whether r admits a request from namespace ns ("" for one
// without a namespace, which every rule admits).
func (r *Rule) admits(ns string) bool {
	return ns == "" || slices.Contains(r.Namespaces, ns) || slices.Equal(r.Namespaces, []string{AnyNamespace})
}

// match returns the rule governing name, or nil.
func (p *Policy) match(name string) *Rule {
	for _, r := range p.Rules {
		if r.matches(name) {
			return r
		}
	}
	return nil
}

// Covers reports whether the policy may admit an artifact named name at
// all: a rule governs the name, or the name is an OCI reference no rule
// covers and the default is allow-unsigned. When it does not, the policy
// denies the artifact whatever it carries (VerifyEvidence's denial, reason
// out-of-scope), so a caller can refuse it before reading anything.
func (p *Policy) Covers(name string) bool {
	if p.match(name) != nil {
		return true
	}
	return p.Default == DefaultAllowUnsigned && !(Subject{Name: name}).local()
}

// Fingerprint returns "sha256:<hex>", the SHA-256 of the policy's canonical
// form: its JSON with defaults applied, keys replaced by their fingerprints
// and trusted roots by the digests of their files. Two files that mean the
// same trust give the same fingerprint; rotating a key file changes it.
func (p *Policy) Fingerprint() string { return p.fingerprint }

// KeyPolicy returns the policy of `verify --key`: every reference must carry
// a valid signature by one of keys.
func KeyPolicy(keys ...*PublicKey) (*Policy, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("no keys: %w", ErrInvalidPolicy)
	}
	r := &Rule{Name: "key", Images: []string{"**"}, Threshold: 1, Mode: ModeEnforce}
	for _, k := range keys {
		r.Authorities = append(r.Authorities, &Authority{Key: k, KeySource: "--key"})
	}
	r.globs = []*regexp.Regexp{anyImage}
	p := &Policy{Default: DefaultDeny, Rules: []*Rule{r}}
	var err error
	if p.fingerprint, err = p.computeFingerprint(); err != nil {
		return nil, err
	}
	return p, nil
}

// canonicalPolicy is the form a policy's fingerprint is computed over.
type canonicalPolicy struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Default    DefaultAction   `json:"default"`
	Rules      []canonicalRule `json:"rules"`
}

type canonicalRule struct {
	Name          string                 `json:"name"`
	Images        []string               `json:"images"`
	Authorities   []canonicalAuthority   `json:"authorities"`
	Threshold     int                    `json:"threshold"`
	Mode          Mode                   `json:"mode"`
	AllowUnsigned bool                   `json:"allowUnsigned"`
	ProgramTypes  []progtype.Kind        `json:"programTypes"`
	Attestations  []canonicalRequirement `json:"attestations,omitempty"`
	Namespaces    []string               `json:"namespaces,omitempty"`
}

type canonicalRequirement struct {
	Name             string               `json:"name"`
	PredicateType    string               `json:"predicateType"`
	Authorities      []canonicalAuthority `json:"authorities"`
	Threshold        int                  `json:"threshold"`
	BuilderID        string               `json:"builderId,omitempty"`
	BuildType        string               `json:"buildType,omitempty"`
	SourceRepository string               `json:"sourceRepository,omitempty"`
}

type canonicalAuthority struct {
	Key           string `json:"key,omitempty"`
	TrustedRoot   string `json:"trustedRoot,omitempty"`
	Issuer        string `json:"issuer,omitempty"`
	IssuerRegExp  string `json:"issuerRegExp,omitempty"`
	Subject       string `json:"subject,omitempty"`
	SubjectRegExp string `json:"subjectRegExp,omitempty"`
}

func (p *Policy) computeFingerprint() (string, error) {
	c := canonicalPolicy{APIVersion: PolicyAPIVersion, Kind: PolicyKind, Default: p.Default, Rules: []canonicalRule{}}
	for _, r := range p.Rules {
		cr := canonicalRule{
			Name:          r.Name,
			Images:        slices.Sorted(slices.Values(r.Images)),
			Authorities:   []canonicalAuthority{},
			Threshold:     r.Threshold,
			Mode:          r.Mode,
			AllowUnsigned: r.AllowUnsigned,
			ProgramTypes:  slices.Compact(slices.Sorted(slices.Values(r.ProgramTypes))),
			Namespaces:    slices.Sorted(slices.Values(r.Namespaces)),
		}
		cr.Authorities = canonicalAuthorities(r.Authorities)
		for _, req := range r.Attestations {
			cr.Attestations = append(cr.Attestations, canonicalRequirement{
				Name: req.Name, PredicateType: req.PredicateType, Authorities: canonicalAuthorities(req.Authorities), Threshold: req.Threshold,
				BuilderID: req.Conditions.BuilderID, BuildType: req.Conditions.BuildType, SourceRepository: req.Conditions.SourceRepository,
			})
		}
		c.Rules = append(c.Rules, cr)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("canonical policy: %w", err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

func canonicalAuthorities(as []*Authority) []canonicalAuthority {
	out := []canonicalAuthority{}
	for _, a := range as {
		var ca canonicalAuthority
		if a.Key != nil {
			ca.Key = a.Key.Fingerprint()
		}
		if k := a.Keyless; k != nil {
			ca = canonicalAuthority{TrustedRoot: k.rootDigest, Issuer: k.Issuer, IssuerRegExp: k.IssuerRegExp, Subject: k.Subject, SubjectRegExp: k.SubjectRegExp}
		}
		out = append(out, ca)
	}
	return out
}
