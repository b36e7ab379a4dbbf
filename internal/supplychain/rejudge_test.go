package supplychain

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/testimage"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// TestRejudge judges artifacts again, offline, under changed policies:
// with the signatures their origin served, as the cache recorded them (the
// origin is gone); not with another origin's; local files by name alone.
func TestRejudge(t *testing.T) {
	e := newChainEnv(t)
	ctx := context.Background()
	other := newSigner(t)
	_, ref := e.signed(t, "xdp", "xdp_counter.bpf.o")
	res, err := e.chain.Fetch(ctx, ref, PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	origin, d := res.Origin, res.Digest
	if err := os.RemoveAll(filepath.Join(e.images, "xdp")); err != nil {
		t.Fatal(err)
	}
	local := "file:" + filepath.Join(bytecodeDir, "tracepoint_counter.bpf.o")

	steps := []struct {
		name   string
		rules  []policyRule
		origin string
		want   verify.Decision
		reason verify.Reason
		err    error
	}{
		{name: "policy unchanged", origin: origin, want: verify.DecisionAllow,
			rules: []policyRule{{Name: "images", Images: []string{"oci:" + e.images + "/**"}, Keys: []string{e.key.pub}}}},
		{name: "key no longer trusted", origin: origin, want: verify.DecisionDeny, reason: verify.ReasonUntrustedKey,
			rules: []policyRule{{Name: "images", Images: []string{"oci:" + e.images + "/**"}, Keys: []string{other.pub}}}},
		{name: "rule gone", origin: origin, want: verify.DecisionDeny, reason: verify.ReasonOutOfScope,
			rules: []policyRule{{Name: "other", Images: []string{"oci:/elsewhere/**"}, Keys: []string{e.key.pub}}}},
		{name: "another origin's name", origin: "oci:" + filepath.Join(e.images, "never"), err: ErrNoEvidence,
			rules: []policyRule{{Name: "images", Images: []string{"oci:" + e.images + "/**"}, Keys: []string{e.key.pub}}}},
		{name: "another origin's name, unsigned allowed", origin: "oci:" + filepath.Join(e.images, "never"), want: verify.DecisionAllowUnsigned,
			rules: []policyRule{{Name: "images", Images: []string{"oci:" + e.images + "/**"}}}},
		{name: "local file allowed", origin: local, want: verify.DecisionAllowUnsigned,
			rules: []policyRule{{Name: "local", Images: []string{"file:" + bytecodeDir + "/**"}}}},
		{name: "local file no longer allowed", origin: local, want: verify.DecisionDeny, reason: verify.ReasonOutOfScope,
			rules: []policyRule{{Name: "images", Images: []string{"oci:" + e.images + "/**"}, Keys: []string{e.key.pub}}}},
	}
	for _, s := range steps {
		writePolicy(t, e.policy, s.rules...)
		if _, err := e.chain.ReloadPolicy(); err != nil {
			t.Fatal(err)
		}
		dg := d
		if s.origin == local {
			dg = ""
		}
		v, err := e.chain.Rejudge(ctx, s.origin, dg)
		if s.err != nil {
			if !errors.Is(err, s.err) {
				t.Errorf("%s: %v, want %v", s.name, err, s.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if v.Decision != s.want || v.Reason != s.reason || v.Policy != e.chain.PolicyFingerprint() {
			t.Errorf("%s: verdict %+v, want %s (%s) under the policy in force", s.name, v, s.want, s.reason)
		}
		if s.want == verify.DecisionDeny && v.Detail == "" {
			t.Errorf("%s: a denial without a detail: %+v", s.name, v)
		}
		if s.want == verify.DecisionAllow && (len(v.Signers) != 1 || v.Signers[0] != testimage.Fingerprint(t, e.key.pub)) {
			t.Errorf("%s: signers %v", s.name, v.Signers)
		}
	}

	// Its signatures removed from the cache: it cannot be judged.
	writePolicy(t, e.policy, policyRule{Name: "images", Images: []string{"oci:" + e.images + "/**"}, Keys: []string{e.key.pub}})
	if _, err := e.chain.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(e.cacheDir, evidenceDir)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.chain.Rejudge(ctx, origin, d); !errors.Is(err, ErrNoEvidence) {
		t.Errorf("without its signatures in the cache: %v, want ErrNoEvidence", err)
	}
}
