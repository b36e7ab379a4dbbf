package verify

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestVerifyNamespaces checks that a request from a Kubernetes namespace is
// admitted only by a governing rule that admits the namespace, that the rule
// governing an image is the first whose images match whoever asks, and that
// a request without a namespace is judged as before.
func TestVerifyNamespaces(t *testing.T) {
	s, subj := layoutWithArtifact(t, "a")
	sign(t, s, subj.Name, subj.Descriptor, key(t, 0).priv, SignOptions{})
	s2, unsignedSubj := layoutWithArtifact(t, "c")
	local := Subject{Name: "file:/opt/bpf/xdp.bpf.o", Descriptor: ocispec.Descriptor{Digest: digest.FromString("elf")}}

	const teamA = "rules:\n- name: team-a\n  images: ['oci:**', 'file:/opt/**']\n  authorities: [{key: {path: k0.pub}}]\n  namespaces: [team-a, team-c]\n"
	cases := map[string]struct {
		policy    string
		store     Source
		subject   Subject
		namespace string
		want      outcome
		detail    string // a substring of the denial's detail
	}{
		"listed namespace": {
			policy: teamA, namespace: "team-a",
			want: outcome{Decision: DecisionAllow, Signatures: []string{"bundle valid"}},
		},
		"another namespace": {
			policy: teamA, namespace: "team-b",
			want:   outcome{Decision: DecisionDeny, Reason: ReasonNamespaceNotAdmitted, Signatures: []string{"bundle valid"}},
			detail: `rule "team-a" governs ` + subj.Name + ` (the first rule whose images match it: oci:**) and admits namespaces team-a, team-c, not "team-b"`,
		},
		"no namespace: the node's operator": {
			policy: teamA,
			want:   outcome{Decision: DecisionAllow, Signatures: []string{"bundle valid"}},
		},
		"every namespace": {
			policy: strings.Replace(teamA, "[team-a, team-c]", `["*"]`, 1), namespace: "team-b",
			want: outcome{Decision: DecisionAllow, Signatures: []string{"bundle valid"}},
		},
		"rule without namespaces admits no namespace": {
			policy: anyKey0, namespace: "team-a",
			want:   outcome{Decision: DecisionDeny, Reason: ReasonNamespaceNotAdmitted, Signatures: []string{"bundle valid"}},
			detail: `rule "any" governs ` + subj.Name + ` (the first rule whose images match it: **) and lists no namespaces: it admits only requests without a namespace, not one from namespace "team-a"`,
		},
		"first match by image stays: a later rule for the namespace never governs": {
			policy: anyKey0 + "- name: team-b\n  images: ['oci:**']\n  authorities: [{key: {path: k0.pub}}]\n  namespaces: [team-b]\n", namespace: "team-b",
			want:   outcome{Decision: DecisionDeny, Reason: ReasonNamespaceNotAdmitted, Signatures: []string{"bundle valid"}},
			detail: `rule "any" governs`,
		},
		"warn mode does not soften the namespace": {
			policy: teamA + "  mode: warn\n", namespace: "team-b",
			want: outcome{Decision: DecisionDeny, Reason: ReasonNamespaceNotAdmitted, Signatures: []string{"bundle valid"}},
		},
		"admitted namespace, unsigned image: the signatures still decide": {
			policy: teamA, store: s2, subject: unsignedSubj, namespace: "team-a",
			want: outcome{Decision: DecisionDeny, Reason: ReasonUnsigned},
		},
		"refused namespace, unsigned image: both findings": {
			policy: teamA, store: s2, subject: unsignedSubj, namespace: "team-b",
			want: outcome{Decision: DecisionDeny, Reason: ReasonNamespaceNotAdmitted},
		},
		"default allow-unsigned admits no namespace": {
			policy: "default: allow-unsigned\nrules: []\n", namespace: "team-a",
			want:   outcome{Decision: DecisionDeny, Reason: ReasonNamespaceNotAdmitted, Signatures: []string{"bundle untrusted-key"}},
			detail: `the policy's default (allow-unsigned) admits only requests without a namespace, not one from namespace "team-a"`,
		},
		"default allow-unsigned, no namespace": {
			policy: "default: allow-unsigned\nrules: []\n",
			want:   outcome{Decision: DecisionAllowUnsigned, Signatures: []string{"bundle untrusted-key"}},
		},
		"no rule covers the image: out of scope for anyone": {
			policy: "rules:\n- name: net\n  images: ['registry.example.com/net/*']\n  authorities: [{key: {path: k0.pub}}]\n  namespaces: [team-a]\n", namespace: "team-a",
			want: outcome{Decision: DecisionDeny, Reason: ReasonOutOfScope, Signatures: []string{"bundle out-of-scope"}},
		},
		"local file under an unsigned rule for another namespace": {
			policy: "rules:\n- name: local\n  images: ['file:/opt/**']\n  allowUnsigned: true\n  namespaces: [team-c]\n", subject: local, namespace: "team-a",
			want: outcome{Decision: DecisionDeny, Reason: ReasonNamespaceNotAdmitted},
		},
		"local file under an unsigned rule for the namespace": {
			policy: "rules:\n- name: local\n  images: ['file:/opt/**']\n  allowUnsigned: true\n  namespaces: [team-a]\n", subject: local, namespace: "team-a",
			want: outcome{Decision: DecisionAllowUnsigned},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			store, subject := tc.store, tc.subject
			if store == nil {
				store = s
			}
			if subject.Name == "" {
				subject = subj
			}
			subject.Namespace = tc.namespace
			got, rep := verifyOutcome(t, parsePolicy(t, nil, tc.policy), store, subject)
			checkOutcome(t, tc.want, got)
			if rep.Namespace != tc.namespace {
				t.Errorf("report namespace %q, want %q", rep.Namespace, tc.namespace)
			}
			if tc.detail != "" && (len(rep.Findings) == 0 || !strings.Contains(rep.Findings[0].Detail, tc.detail)) {
				t.Errorf("findings %+v: the first does not say %q", rep.Findings, tc.detail)
			}
			if tc.want.Reason == ReasonNamespaceNotAdmitted && subject.Name == unsignedSubj.Name {
				var reasons []Reason
				for _, f := range rep.Findings {
					reasons = append(reasons, f.Reason)
				}
				if diff := cmp.Diff([]Reason{ReasonNamespaceNotAdmitted, ReasonUnsigned}, reasons); diff != "" {
					t.Errorf("findings (-want +got):\n%s", diff)
				}
			}
		})
	}
}
