package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/oci"
)

// provenance returns a SLSA provenance v0.2 predicate by builder, from the
// source repository repo at a revision.
func provenance(builder, repo string) []byte {
	return fmt.Appendf(nil, `{"builder":{"id":%q},"buildType":"https://github.com/slsa-framework/slsa-github-generator/generic@v1",
"invocation":{"configSource":{"uri":"%s@refs/tags/v1.0.0","digest":{"sha1":"0123456789abcdef0123456789abcdef01234567"},"entryPoint":".github/workflows/release.yml"}},
"metadata":{"buildInvocationID":"1-1","completeness":{"parameters":true,"environment":false,"materials":false},"reproducible":false},
"materials":[{"uri":"%s@refs/tags/v1.0.0"}]}`, builder, repo, repo)
}

const (
	goodBuilder = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v2.0.0"
	evilBuilder = "https://ci.example.com/self-hosted"
	sourceRepo  = "git+https://github.com/example/bpf"
)

// requireSLSA is a policy whose one rule trusts k0 for signatures and
// requires SLSA provenance signed by k1 from goodBuilder, of a repository
// under git+https://github.com/example/.
const requireSLSA = `rules:
- name: prod
  images: ['**']
  authorities: [{key: {path: k0.pub}}]
  require:
    attestations:
    - name: provenance
      predicateType: slsaprovenance
      authorities: [{key: {path: k1.pub}}]
      conditions:
        builderId: ` + goodBuilder + `
        sourceRepository: git+https://github.com/example/*
`

// TestVerifyRequiredAttestations checks a rule requiring SLSA provenance from
// a given builder: it admits an artifact that has it, and denies one that
// lacks it, has it from another builder or another repository, signed by
// an untrusted key, or copied from another artifact.
func TestVerifyRequiredAttestations(t *testing.T) {
	ctx := context.Background()
	pol := parsePolicy(t, nil, requireSLSA)
	cases := map[string]struct {
		attest     func(t *testing.T, s store, subj Subject)
		want       outcome
		wantReason Reason
		wantDetail string
	}{
		"provenance from the builder": {
			attest: func(t *testing.T, s store, subj Subject) {
				attest(t, s, subj, key(t, 1).priv, "slsaprovenance", provenance(goodBuilder, sourceRepo))
			},
			want: outcome{Decision: DecisionAllow, Signatures: []string{"bundle valid"}},
		},
		"no provenance": {
			want:       outcome{Decision: DecisionDeny, Reason: ReasonAttestationMissing, Signatures: []string{"bundle valid"}},
			wantReason: ReasonAttestationMissing,
			wantDetail: `requirement "provenance": no https://slsa.dev/provenance/v0.2 attestation of sha256:`,
		},
		"provenance from another builder": {
			attest: func(t *testing.T, s store, subj Subject) {
				attest(t, s, subj, key(t, 1).priv, "slsaprovenance", provenance(evilBuilder, sourceRepo))
			},
			want:       outcome{Decision: DecisionDeny, Reason: ReasonAttestationConditions, Signatures: []string{"bundle valid"}},
			wantReason: ReasonAttestationConditions,
			wantDetail: `built by builder "` + evilBuilder + `", not "` + goodBuilder + `"`,
		},
		"provenance of another repository": {
			attest: func(t *testing.T, s store, subj Subject) {
				attest(t, s, subj, key(t, 1).priv, "slsaprovenance", provenance(goodBuilder, "git+https://github.com/mallory/bpf"))
			},
			want:       outcome{Decision: DecisionDeny, Reason: ReasonAttestationConditions, Signatures: []string{"bundle valid"}},
			wantReason: ReasonAttestationConditions,
			wantDetail: `source repository "git+https://github.com/mallory/bpf" does not match "git+https://github.com/example/*"`,
		},
		"provenance signed by the image signer, not the builder key": {
			attest: func(t *testing.T, s store, subj Subject) {
				attest(t, s, subj, key(t, 0).priv, "slsaprovenance", provenance(goodBuilder, sourceRepo))
			},
			want:       outcome{Decision: DecisionDeny, Reason: ReasonAttestationMissing, Signatures: []string{"bundle valid"}},
			wantReason: ReasonAttestationMissing,
			wantDetail: "(1 found of that type: untrusted-key)",
		},
		"SPDX instead of provenance": {
			attest: func(t *testing.T, s store, subj Subject) {
				attest(t, s, subj, key(t, 1).priv, "spdx", []byte("SPDXVersion: SPDX-2.3\n"))
			},
			want:       outcome{Decision: DecisionDeny, Reason: ReasonAttestationMissing, Signatures: []string{"bundle valid"}},
			wantReason: ReasonAttestationMissing,
		},
		"provenance of another artifact": {
			attest: func(t *testing.T, s store, subj Subject) {
				other := Subject{Name: subj.Name, Descriptor: pushArtifact(t, s, "other", "")}
				desc := attest(t, s, other, key(t, 1).priv, "slsaprovenance", provenance(goodBuilder, sourceRepo))
				m := manifestOf(t, s.(*layoutStore).Store, desc)
				m.Subject = &subj.Descriptor
				pushManifest(t, s.(*layoutStore).Store, m, "")
			},
			want:       outcome{Decision: DecisionDeny, Reason: ReasonAttestationMissing, Signatures: []string{"bundle valid"}},
			wantReason: ReasonAttestationMissing,
			wantDetail: "digest-mismatch",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			st, subj := layoutWithArtifact(t, "a")
			s := &layoutStore{st}
			sign(t, st, subj.Name, subj.Descriptor, key(t, 0).priv, SignOptions{})
			if tc.attest != nil {
				tc.attest(t, s, subj)
			}
			got, rep := verifyOutcome(t, pol, st, subj)
			checkOutcome(t, tc.want, got)
			if len(rep.Requirements) != 1 {
				t.Fatalf("requirements %+v, want one", rep.Requirements)
			}
			req := rep.Requirements[0]
			if req.Satisfied != (tc.wantReason == "") || req.Reason != tc.wantReason || !strings.Contains(req.Detail, tc.wantDetail) {
				t.Errorf("requirement %+v\nwant reason %q, detail holding %q", req, tc.wantReason, tc.wantDetail)
			}
			if req.Name != "provenance" || req.PredicateType != PredicateSLSAProvenance02 {
				t.Errorf("requirement named %q for %q", req.Name, req.PredicateType)
			}
			for _, a := range req.Attestations {
				if a.Valid != (a.Authority != "") {
					t.Errorf("attestation %+v: authority set on a denied one, or missing on a valid one", a)
				}
			}
			// The report's JSON carries the requirement.
			b, _ := json.Marshal(rep)
			if !strings.Contains(string(b), `"requirements":[{"name":"provenance"`) {
				t.Errorf("report JSON lacks the requirement: %s", b)
			}
		})
	}
	// The rule's signatures still come first: an unsigned artifact with
	// provenance is denied as unsigned, and the requirement is reported.
	st, subj := layoutWithArtifact(t, "b")
	attest(t, &layoutStore{st}, subj, key(t, 1).priv, "slsaprovenance", provenance(goodBuilder, sourceRepo))
	got, rep := verifyOutcome(t, pol, st, subj)
	checkOutcome(t, outcome{Decision: DecisionDeny, Reason: ReasonUnsigned}, got)
	if !rep.Requirements[0].Satisfied {
		t.Errorf("requirement %+v", rep.Requirements[0])
	}
	_ = ctx
}

// layoutStore is a layout as the store attest writes to.
type layoutStore struct{ *oci.Store }

func attest(t *testing.T, s store, subj Subject, k *PrivateKey, predicateType string, predicate []byte) ocispec.Descriptor {
	t.Helper()
	desc, err := Attest(context.Background(), s, subj, k, predicateType, predicate, AttestOptions{})
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	return desc
}

func TestWithoutRevision(t *testing.T) {
	for in, want := range map[string]string{
		"git+https://github.com/example/bpf@refs/tags/v1.0.0": "git+https://github.com/example/bpf",
		"git+https://github.com/example/bpf":                  "git+https://github.com/example/bpf",
		"https://user@git.example.com/bpf@abc":                "https://user@git.example.com/bpf",
		"https://git.example.com":                             "https://git.example.com",
		"pkg:github/example/bpf@v1":                           "pkg:github/example/bpf",
	} {
		if got := withoutRevision(in); got != want {
			t.Errorf("withoutRevision(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPredicateType(t *testing.T) {
	cases := map[string]string{
		"slsaprovenance":                  PredicateSLSAProvenance02,
		"slsaprovenance1":                 PredicateSLSAProvenance1,
		"spdx":                            PredicateSPDX,
		"https://example.com/bpf/test/v1": "https://example.com/bpf/test/v1",
		"urn:example:bpf":                 "urn:example:bpf",
		"custom":                          "",
		"not a uri":                       "",
		"/relative":                       "",
		SignPredicateType:                 "",
	}
	got := map[string]string{}
	for in := range cases {
		got[in], _ = PredicateType(in)
	}
	if diff := cmp.Diff(cases, got); diff != "" {
		t.Errorf("PredicateType (-want +got):\n%s", diff)
	}
}
