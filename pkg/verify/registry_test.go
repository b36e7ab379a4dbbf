package verify

import (
	"context"
	"testing"
	"time"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// TestVerifyRegistry verifies on a registry without the referrers API, where
// bundles are found through the "sha256-<hex>" tag index. It also plants, in
// B's index, a referrer whose subject is another artifact C: denied as a
// digest mismatch, not counted.
func TestVerifyRegistry(t *testing.T) {
	ctx := context.Background()
	reg := testutil.StartRegistry(t)
	repo := newRepository(t, reg.Host, "verify/subject")
	name := reg.Host + "/verify/subject"
	b := Subject{Name: name, Descriptor: pushArtifact(t, repo, "b", "b")}
	c := Subject{Name: name, Descriptor: pushArtifact(t, repo, "c", "c")}
	pol := parsePolicy(t, nil, anyKey0)

	got, _ := verifyOutcome(t, pol, repo, b)
	checkOutcome(t, outcome{Decision: DecisionDeny, Reason: ReasonUnsigned}, got)

	sign(t, repo, name, c.Descriptor, key(t, 0).priv, SignOptions{})
	got, _ = verifyOutcome(t, pol, repo, c)
	checkOutcome(t, outcome{Decision: DecisionAllow, Signatures: []string{"bundle valid"}}, got)

	index, err := repo.Resolve(ctx, referrersTag(c))
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Tag(ctx, index, referrersTag(b)); err != nil {
		t.Fatal(err)
	}
	got, _ = verifyOutcome(t, pol, repo, b)
	checkOutcome(t, outcome{Decision: DecisionDeny, Reason: ReasonDigestMismatch, Signatures: []string{"bundle digest-mismatch"}}, got)
}

// TestVerifyRegistryManySignatures stores 50 signatures by untrusted keys on
// a registry, half in each format: denied, having read them all.
func TestVerifyRegistryManySignatures(t *testing.T) {
	reg := testutil.StartRegistry(t)
	repo := newRepository(t, reg.Host, "verify/many")
	subject := Subject{Name: reg.Host + "/verify/many", Descriptor: pushArtifact(t, repo, "many", "v1")}
	for i := 0; i < 50; i++ {
		format := FormatBundle
		if i%2 == 0 {
			format = FormatLegacy
		}
		sign(t, repo, subject.Name, subject.Descriptor, key(t, 1+i%2).priv, SignOptions{Format: format})
	}
	start := time.Now()
	got, _ := verifyOutcome(t, parsePolicy(t, nil, anyKey0), repo, subject)
	t.Logf("read and judged 50 signatures on the registry in %s", time.Since(start))
	if got.Decision != DecisionDeny || got.Reason != ReasonUntrustedKey || len(got.Signatures) != 50 {
		t.Errorf("decision %s (%s) with %d signatures, want deny (untrusted-key) with 50", got.Decision, got.Reason, len(got.Signatures))
	}
}

// referrersTag is the tag of the referrers index of s on a registry without
// the referrers API.
func referrersTag(s Subject) string {
	return s.Descriptor.Digest.Algorithm().String() + "-" + s.Descriptor.Digest.Encoded()
}
