package supplychain

import (
	"github.com/opencontainers/go-digest"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// Result is what Fetch found and decided. Fetch returns one even with an
// error, filled as far as it got, so that the caller can record the digest
// and the verdict of a request that failed later or was denied.
type Result struct {
	// Reference is the reference as requested.
	Reference string
	// Origin is the name the artifact was fetched from, which the trust
	// policy judged: the reference's name ("host/repo", "oci:/path",
	// "file:/path"); empty when the reference did not parse.
	Origin string
	// Digest is the manifest digest the reference resolved to; empty until
	// resolved, and for local files.
	Digest digest.Digest
	// Verified says whether the trust policy was consulted; Verdict is its
	// decision, nil when verification failed with an error rather than a
	// decision (or did not run).
	Verified bool
	Verdict  *Verdict
	// VerdictRemembered says that Verdict is an admission the policy in
	// force made before of the same digest, origin, signatures and
	// namespace, not judged again.
	VerdictRemembered bool
	// Objects are the artifact's ELF objects for this host's platform, in
	// the artifact's order; set only when the policy admitted them, and
	// never by Pull.
	Objects []Object
	// Annotations are the annotations of the manifest the objects came
	// from (none for local files); set only when the policy admitted them.
	Annotations map[string]string
	// CacheHits counts artifacts found in the cache without pulling,
	// Pulls those pulled from their origin, Repairs cached artifacts found
	// damaged and removed to be pulled again.
	CacheHits, Pulls, Repairs int
}

// Admitted reports whether the trust policy admitted the artifact.
func (r *Result) Admitted() bool {
	return r != nil && r.Verdict != nil && r.Verdict.Decision != verify.DecisionDeny
}

// Object is one BPF ELF object of an admitted artifact.
type Object struct {
	// Name is the object's name in the artifact, e.g. "xdp_counter.bpf.o".
	Name string
	// ELF is the object file's content.
	ELF []byte
}

// Verdict is the trust policy's decision on an artifact.
type Verdict struct {
	// Decision is allow, allow-unsigned, warn or deny; Reason explains a
	// deny or a warn, and Detail in a sentence.
	Decision verify.Decision
	Reason   verify.Reason
	Detail   string
	// Rule names the rule that governed the artifact; empty when the
	// default applied.
	Rule string
	// Signers are the key fingerprints or identities whose signatures
	// counted; none for unsigned bytecode.
	Signers []string
	// Policy is the fingerprint of the policy that decided.
	Policy string
	// AllowedKinds are the program kinds the rule allows; nil allows any.
	AllowedKinds []progtype.Kind
}

// verdictOf summarizes a verification's report.
func verdictOf(report *verify.Report) *Verdict {
	if report == nil {
		return nil
	}
	v := &Verdict{
		Decision:     report.Decision,
		Reason:       report.Reason,
		Rule:         report.Rule,
		Signers:      report.Signers(),
		Policy:       report.Policy,
		AllowedKinds: report.AllowedProgramTypes,
	}
	if len(report.Findings) > 0 {
		v.Detail = report.Findings[0].Detail
	}
	return v
}
