package verify_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/memory"

	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// Sign an artifact in the bundle format and verify it with the public key,
// all in an in-memory store (a registry repository or an OCI layout work the
// same).
func ExampleSign() {
	ctx := context.Background()
	store := memory.New()
	desc, err := oras.PackManifest(ctx, store, oras.PackManifestVersion1_1, "application/vnd.example", oras.PackManifestOptions{})
	if err != nil {
		log.Fatal(err)
	}
	subject := verify.Subject{Name: "registry.example.com/net/xdp", Descriptor: desc}

	keys, err := verify.GenerateKeyPair([]byte("password"))
	if err != nil {
		log.Fatal(err)
	}
	key, err := verify.LoadPrivateKey(keys.PrivatePEM, []byte("password"))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := verify.Sign(ctx, store, subject, key, verify.SignOptions{Format: verify.FormatBundle}); err != nil {
		log.Fatal(err)
	}

	policy, err := verify.KeyPolicy(key.Public())
	if err != nil {
		log.Fatal(err)
	}
	report, err := verify.NewVerifier(policy, verify.VerifierOptions{}).VerifyArtifact(ctx, store, subject)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(report.Decision, len(report.Signatures), report.Signatures[0].Format, report.Signatures[0].Valid)
	// Output: allow 1 bundle true
}

// A trust policy that admits local object files under /opt/bpf unsigned and
// denies everything else: an unsigned registry image is denied, with a
// reason a program can match.
func ExampleParsePolicy() {
	policy, err := verify.ParsePolicy([]byte(`
apiVersion: bpfd.io/v1alpha1
kind: TrustPolicy
default: deny
rules:
- name: local-development
  images: ["file:/opt/bpf/**"]
  allowUnsigned: true
  allow:
    programTypes: [tracepoint, kprobe]
`), verify.ParseOptions{Source: "policy.yaml"})
	if err != nil {
		log.Fatal(err)
	}
	v := verify.NewVerifier(policy, verify.VerifierOptions{})

	report, err := v.Verify(verify.Subject{Name: "file:/opt/bpf/trace.bpf.o"}, nil)
	fmt.Println(report.Decision, report.Rule, report.AllowedProgramTypes, err)

	image := verify.Subject{Name: "registry.example.com/net/xdp", Descriptor: ocispec.Descriptor{Digest: digest.FromString("xdp")}}
	_, err = v.Verify(image, nil)
	var denial *verify.DenialError
	if errors.As(err, &denial) {
		fmt.Println(denial.Reason)
	}
	// Output:
	// allow-unsigned local-development [tracepoint kprobe] <nil>
	// out-of-scope
}

// Every problem of a policy is reported at once, with its line.
func ExampleParsePolicy_errors() {
	_, err := verify.ParsePolicy([]byte(`apiVersion: bpfd.io/v1alpha1
kind: TrustPolicy
rules:
- name: net
  images: ["registry.example.com/net/[xdp"]
  authorities: []
  mode: audit
`), verify.ParseOptions{Source: "policy.yaml"})
	fmt.Println(err)
	// Output:
	// invalid trust policy policy.yaml: 3 problems:
	//   policy.yaml:5: rules[0].images[0]: bad image pattern "registry.example.com/net/[xdp": unterminated character class '['
	//   policy.yaml:6: rules[0].authorities: empty: list at least one key or keyless authority, or set allowUnsigned: true
	//   policy.yaml:7: rules[0].mode: "audit": want enforce or warn
}

// Attest SLSA provenance to an artifact and verify it against a policy that
// requires provenance from one builder, signed by the builder's key, besides
// the image signature.
func ExampleAttest() {
	ctx := context.Background()
	store := memory.New()
	desc, err := oras.PackManifest(ctx, store, oras.PackManifestVersion1_1, "application/vnd.example", oras.PackManifestOptions{})
	if err != nil {
		log.Fatal(err)
	}
	subject := verify.Subject{Name: "registry.example.com/net/xdp", Descriptor: desc}
	key := func() *verify.PrivateKey {
		pair, err := verify.GenerateKeyPair([]byte("pw"))
		if err != nil {
			log.Fatal(err)
		}
		k, err := verify.LoadPrivateKey(pair.PrivatePEM, []byte("pw"))
		if err != nil {
			log.Fatal(err)
		}
		return k
	}
	signer, builder := key(), key()
	if _, err := verify.Sign(ctx, store, subject, signer, verify.SignOptions{}); err != nil {
		log.Fatal(err)
	}
	provenance := []byte(`{"builder": {"id": "https://ci.example.com/trusted"}, "buildType": "https://example.com/make"}`)
	if _, err := verify.Attest(ctx, store, subject, builder, "slsaprovenance", provenance, verify.AttestOptions{}); err != nil {
		log.Fatal(err)
	}

	policy, err := verify.ParsePolicy(fmt.Appendf(nil, `apiVersion: bpfd.io/v1alpha1
kind: TrustPolicy
rules:
- name: net
  images: ["registry.example.com/net/*"]
  authorities: [{key: {pem: %q}}]
  require:
    attestations:
    - name: provenance
      predicateType: slsaprovenance
      authorities: [{key: {pem: %q}}]
      conditions: {builderId: "https://ci.example.com/trusted"}
`, signer.Public().PEM(), builder.Public().PEM()), verify.ParseOptions{})
	if err != nil {
		log.Fatal(err)
	}
	report, err := verify.NewVerifier(policy, verify.VerifierOptions{}).VerifyArtifact(ctx, store, subject)
	if err != nil {
		log.Fatal(err)
	}
	r := report.Requirements[0]
	fmt.Println(report.Decision, r.Name, r.PredicateType, r.Satisfied)
	// Output: allow provenance https://slsa.dev/provenance/v0.2 true
}
