package supplychain

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// TestFetchForNamespace checks that the chain passes the requesting
// namespace to the trust policy: a rule admitting team-a admits its request,
// refuses team-b's with namespace-not-admitted (without pulling again from
// the origin: no signature can change who may load), and a request without
// a namespace is judged as before.
func TestFetchForNamespace(t *testing.T) {
	e := newChainEnv(t)
	writePolicy(t, e.policy, policyRule{Name: "team-a", Images: []string{"oci:" + e.images + "/**"}, Keys: []string{e.key.pub}, Namespaces: []string{"team-a"}})
	if _, err := e.chain.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	_, ref := e.signed(t, "xdp", "xdp_counter.bpf.o")
	ctx := context.Background()

	cases := []struct { // in order: the first pulls into the cache
		name       string
		namespace  string
		wantReason verify.Reason
		wantPulls  int
	}{
		{name: "admitted namespace", namespace: "team-a", wantPulls: 1},
		{name: "other namespace", namespace: "team-b", wantReason: verify.ReasonNamespaceNotAdmitted},
		{name: "no namespace", namespace: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.chain.FetchFor(ctx, ref, PullIfNotPresent, tc.namespace)
			var denial *verify.DenialError
			switch {
			case tc.wantReason == "" && err != nil:
				t.Fatalf("FetchFor: %v", err)
			case tc.wantReason == "" && !res.Admitted():
				t.Fatalf("result %+v: not admitted", res)
			case tc.wantReason != "" && (!errors.As(err, &denial) || denial.Reason != tc.wantReason):
				t.Fatalf("FetchFor: %v, want a denial for %s", err, tc.wantReason)
			case tc.wantReason != "" && (res.Objects != nil || res.Verdict == nil || res.Verdict.Reason != tc.wantReason || res.Verdict.Rule != "team-a"):
				t.Fatalf("denied result %+v (verdict %+v): want no objects and the verdict of rule team-a", res, res.Verdict)
			}
			if res.Pulls != tc.wantPulls {
				t.Errorf("pulls %d, want %d", res.Pulls, tc.wantPulls)
			}
		})
	}

	// A local file: the same rule decides by the namespace too.
	writePolicy(t, e.policy, policyRule{Name: "local", Images: []string{"file:" + bytecodeDir + "/**"}, Namespaces: []string{"team-a"}})
	if _, err := e.chain.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	obj := filepath.Join(bytecodeDir, "xdp_counter.bpf.o")
	if _, err := e.chain.FetchFor(ctx, "file:"+obj, PullIfNotPresent, "team-a"); err != nil {
		t.Fatalf("local file for team-a: %v", err)
	}
	var denial *verify.DenialError
	if _, err := e.chain.FetchFor(ctx, "file:"+obj, PullIfNotPresent, "team-b"); !errors.As(err, &denial) || denial.Reason != verify.ReasonNamespaceNotAdmitted {
		t.Fatalf("local file for team-b: %v, want a namespace-not-admitted denial", err)
	}
}

// TestRejudgeForNamespace: a program loaded for a namespace is judged again
// for it: a policy that no longer lists the namespace denies it, while the
// same artifact stays admitted for a request without a namespace.
func TestRejudgeForNamespace(t *testing.T) {
	e := newChainEnv(t)
	ctx := context.Background()
	_, ref := e.signed(t, "xdp", "xdp_counter.bpf.o")
	writePolicy(t, e.policy, policyRule{Name: "team-a", Images: []string{"oci:" + e.images + "/**"}, Keys: []string{e.key.pub}, Namespaces: []string{"team-a"}})
	if _, err := e.chain.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	res, err := e.chain.FetchFor(ctx, ref, PullIfNotPresent, "team-a")
	if err != nil {
		t.Fatal(err)
	}
	writePolicy(t, e.policy, policyRule{Name: "team-a", Images: []string{"oci:" + e.images + "/**"}, Keys: []string{e.key.pub}, Namespaces: []string{"team-b"}})
	if _, err := e.chain.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	v, err := e.chain.RejudgeFor(ctx, res.Origin, res.Digest, "team-a")
	if err != nil || v.Decision != verify.DecisionDeny || v.Reason != verify.ReasonNamespaceNotAdmitted {
		t.Fatalf("RejudgeFor team-a: %+v, %v; want a namespace-not-admitted denial", v, err)
	}
	if v, err := e.chain.Rejudge(ctx, res.Origin, res.Digest); err != nil || v.Decision != verify.DecisionAllow {
		t.Fatalf("Rejudge without a namespace: %+v, %v; want allow", v, err)
	}
}
