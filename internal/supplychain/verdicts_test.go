package supplychain

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/testimage"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// TestRememberedVerdicts: an admission is remembered for the digest, the
// origin and the signatures it served, the namespace asking and the policy
// in force, and judged again when any of them changes: another origin
// serving the same digest, another tenant's namespace, a policy reloaded
// (even unchanged), signatures pulled again. A remembered verdict never
// vouches for bytes: a tampered cached layer is still refused.
func TestRememberedVerdicts(t *testing.T) {
	e := newChainEnv(t)
	ctx := context.Background()
	k2 := newSigner(t)
	other := filepath.Join(e.dir, "other")
	rules := []policyRule{
		{Name: "images", Images: []string{"oci:" + e.images + "/**"}, Keys: []string{e.key.pub}, Namespaces: []string{"team-a"}},
		// The same digest from another origin is trusted only when k2
		// signed it there.
		{Name: "other", Images: []string{"oci:" + other + "/**"}, Keys: []string{k2.pub}, Namespaces: []string{"team-a", "team-b"}},
	}
	reload := func(t *testing.T, rules ...policyRule) {
		t.Helper()
		writePolicy(t, e.policy, rules...)
		if _, err := e.chain.ReloadPolicy(); err != nil {
			t.Fatal(err)
		}
	}
	reload(t, rules...)
	_, ref := e.signed(t, "xdp", "xdp_counter.bpf.o")
	// The same bytes and e.key's signatures, served by another origin.
	otherRef := copyArtifact(t, ref, filepath.Join(other, "xdp"), artifact.CopyOptions{})

	type fetchCase struct {
		ref        string
		namespace  string
		policy     PullPolicy
		wantReason verify.Reason // "" for admitted
		// wantRemembered: admitted by a verdict remembered from an earlier
		// fetch, without judging the signatures again.
		wantRemembered bool
	}
	check := func(t *testing.T, name string, tc fetchCase) {
		t.Helper()
		if tc.policy == "" {
			tc.policy = PullIfNotPresent
		}
		res, err := e.chain.FetchFor(ctx, tc.ref, tc.policy, tc.namespace)
		var denial *verify.DenialError
		switch {
		case tc.wantReason == "" && err != nil:
			t.Fatalf("%s: %v, want admitted", name, err)
		case tc.wantReason != "" && (!errors.As(err, &denial) || denial.Reason != tc.wantReason):
			t.Fatalf("%s: %v (verdict %+v), want a denial for %s", name, err, res.Verdict, tc.wantReason)
		case tc.wantReason != "" && res.Objects != nil:
			t.Fatalf("%s: denied, yet objects returned", name)
		}
		if res.VerdictRemembered != tc.wantRemembered {
			t.Errorf("%s: verdict remembered %v, want %v", name, res.VerdictRemembered, tc.wantRemembered)
		}
	}

	steps := []struct {
		name string
		fetchCase
	}{
		{"first fetch is judged", fetchCase{ref: ref}},
		{"the same again is remembered", fetchCase{ref: ref, wantRemembered: true}},
		{"a tenant is judged afresh", fetchCase{ref: ref, namespace: "team-a"}},
		{"the tenant again is remembered", fetchCase{ref: ref, namespace: "team-a", wantRemembered: true}},
		{"another tenant is judged afresh: denied", fetchCase{ref: ref, namespace: "team-b", wantReason: verify.ReasonNamespaceNotAdmitted}},
		{"another tenant again: still denied", fetchCase{ref: ref, namespace: "team-b", wantReason: verify.ReasonNamespaceNotAdmitted}},
		{"another origin of the same digest is judged afresh: denied", fetchCase{ref: otherRef, wantReason: verify.ReasonOutOfScope}},
		{"another origin again: still denied", fetchCase{ref: otherRef, namespace: "team-a", wantReason: verify.ReasonOutOfScope}},
		{"the first origin is still remembered", fetchCase{ref: ref, wantRemembered: true}},
		{"signatures pulled again are judged afresh", fetchCase{ref: ref, policy: PullAlways}},
		{"then remembered", fetchCase{ref: ref, policy: PullNever, wantRemembered: true}},
	}
	for _, s := range steps {
		check(t, s.name, s.fetchCase)
	}

	// k2 signs the copy at the other origin: admitted there, judged once.
	k2.sign(t, otherRef, verify.FormatBundle)
	check(t, "other origin signed by its key", fetchCase{ref: otherRef, policy: PullAlways})
	check(t, "other origin remembered", fetchCase{ref: otherRef, wantRemembered: true})

	// A policy that no longer trusts e.key, reloaded (SIGHUP): the
	// remembered admission is gone, the artifact denied.
	reload(t, policyRule{Name: "images", Images: []string{"oci:" + e.images + "/**"}, Keys: []string{k2.pub}, Namespaces: []string{"team-a"}}, rules[1])
	check(t, "policy changed: denied", fetchCase{ref: ref, wantReason: verify.ReasonUntrustedKey})
	check(t, "policy changed, tenant: denied", fetchCase{ref: ref, namespace: "team-a", wantReason: verify.ReasonUntrustedKey})
	// A policy that no longer admits team-a at the other origin.
	reload(t, rules[0], policyRule{Name: "other", Images: []string{"oci:" + other + "/**"}, Keys: []string{k2.pub}, Namespaces: []string{"team-b"}})
	check(t, "tenant dropped from the rule: denied", fetchCase{ref: otherRef, namespace: "team-a", wantReason: verify.ReasonNamespaceNotAdmitted})
	// Any reload, even of the same policy, judges afresh.
	reload(t, rules...)
	check(t, "policy restored: judged afresh", fetchCase{ref: ref})
	reload(t, rules...)
	check(t, "same policy reloaded: judged afresh", fetchCase{ref: ref})
	check(t, "then remembered", fetchCase{ref: ref, wantRemembered: true})

	// Rotating the key file in place changes the policy on reload: the
	// remembered admission goes with it.
	keyFile := filepath.Join(e.dir, "rotated.pub")
	copyFile := func(from string) {
		pem, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, pem, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(e.key.pub)
	reload(t, policyRule{Name: "images", Images: []string{"oci:" + e.images + "/**"}, Keys: []string{keyFile}})
	check(t, "key file before rotation", fetchCase{ref: ref})
	check(t, "key file before rotation, remembered", fetchCase{ref: ref, wantRemembered: true})
	copyFile(newSigner(t).pub)
	if _, err := e.chain.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	check(t, "key file rotated: denied", fetchCase{ref: ref, wantReason: verify.ReasonUntrustedKey})
}

// TestRememberedVerdictTamperedLayer: a remembered admission does not vouch
// for the bytes: a cached layer changed after it was admitted is detected
// by its digest, refused under Never and pulled again otherwise.
func TestRememberedVerdictTamperedLayer(t *testing.T) {
	e := newChainEnv(t)
	ctx := context.Background()
	_, ref := e.signed(t, "xdp", "xdp_counter.bpf.o")
	want, err := e.chain.Fetch(ctx, ref, PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := e.chain.Fetch(ctx, ref, PullNever); err != nil || !res.VerdictRemembered {
		t.Fatalf("second fetch: %v, remembered %v; want a remembered admission", err, res.VerdictRemembered)
	}
	layer := testimage.ReadManifest(t, e.cacheDir, rootOf(t, ref)).Layers[0]
	testimage.Damage(t, e.cacheDir, layer.Digest)
	res, err := e.chain.Fetch(ctx, ref, PullNever)
	if !errors.Is(err, ErrNotCached) || res.Objects != nil || res.Repairs != 1 {
		t.Fatalf("tampered layer under Never: %v, %d objects, %d repairs; want refused, repaired", err, len(res.Objects), res.Repairs)
	}
	got, err := e.chain.Fetch(ctx, ref, PullIfNotPresent)
	if err != nil || got.Pulls != 1 {
		t.Fatalf("tampered layer: %v, %d pulls; want pulled again", err, got.Pulls)
	}
	if len(got.Objects) != 1 || string(got.Objects[0].ELF) != string(want.Objects[0].ELF) {
		t.Error("objects differ from those first admitted")
	}
}
