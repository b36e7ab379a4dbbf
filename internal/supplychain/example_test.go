package supplychain_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/bpfd-dev/bpfd/internal/supplychain"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// ExampleChain_Fetch fetches and admits an artifact, as bpfd's daemon does
// before it hands the objects to the runtime. It reads /etc/bpfd, so it is
// not run.
func ExampleChain_Fetch() {
	ctx := context.Background()
	chain, err := supplychain.Open(ctx, supplychain.Options{CacheDir: "/var/lib/bpfd/cache", PolicyFile: "/etc/bpfd/policy.yaml"})
	if err != nil {
		log.Fatal(err)
	}
	defer chain.Close()

	res, err := chain.Fetch(ctx, "registry.example/net/counters:v1", supplychain.PullIfNotPresent)
	var (
		denial *verify.DenialError
		pull   *supplychain.PullError
	)
	switch {
	case errors.As(err, &denial):
		log.Fatalf("denied by rule %q: %s", res.Verdict.Rule, denial.Reason)
	case errors.As(err, &pull):
		log.Fatalf("cannot fetch %s: %v", pull.Reference, err)
	case err != nil:
		log.Fatal(err)
	}
	for _, o := range res.Objects {
		fmt.Println(o.Name, len(o.ELF), res.Digest, res.Verdict.Signers)
	}
}

// ExampleChain_FetchFor fetches an artifact for a tenant's namespace: the
// trust policy's rule for the image must list the namespace. It reads
// /etc/bpfd, so it is not run.
func ExampleChain_FetchFor() {
	ctx := context.Background()
	chain, err := supplychain.Open(ctx, supplychain.Options{CacheDir: "/var/lib/bpfd/cache", PolicyFile: "/etc/bpfd/policy.yaml"})
	if err != nil {
		log.Fatal(err)
	}
	defer chain.Close()

	res, err := chain.FetchFor(ctx, "registry.example/team-a/counters:v1", supplychain.PullIfNotPresent, "team-a")
	var denial *verify.DenialError
	switch {
	case errors.As(err, &denial) && denial.Reason == verify.ReasonNamespaceNotAdmitted:
		log.Fatalf("rule %q does not admit namespace team-a: %s", res.Verdict.Rule, denial.Detail)
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println(res.Digest, res.Verdict.Rule)
}

func ExampleParsePullPolicy() {
	for _, s := range []string{"", "Always", "sometimes"} {
		p, err := supplychain.ParsePullPolicy(s)
		fmt.Printf("%q %v\n", p, err)
	}
	// Output:
	// "IfNotPresent" <nil>
	// "Always" <nil>
	// "" pull policy "sometimes" (want Always, IfNotPresent or Never): invalid
}
