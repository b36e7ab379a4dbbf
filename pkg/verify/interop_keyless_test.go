package verify

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// TestInteropKeyless crosses certificate ("keyless") signatures with cosign,
// offline: the certificate authority is made in the test and named by a
// trusted_root.json; no Fulcio, Rekor or TUF is involved. cosign v3 signs a
// bundle and cosign v2 a legacy signature with a key and its certificate;
// bpfctl verifies them against a keyless authority. bpfctl signs both formats
// with a certificate; cosign v3 (bundle) and v2 (legacy) verify them by
// identity.
func TestInteropKeyless(t *testing.T) {
	ctx := context.Background()
	reg := testutil.StartRegistry(t)
	cosign2, cosign3 := lookCosign(t, "cosign2"), lookCosign(t, "cosign3")
	ca := newTestCA(t)
	const subjectEmail, issuer = "release@example.com", "https://issuer.example.com"
	leaf := ca.issue(t, subjectEmail, issuer, time.Now().Add(-time.Minute))
	dir := t.TempDir()
	keyFile, certFile, chainFile := filepath.Join(dir, "leaf.key"), filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "chain.pem")
	writeFile(t, keyFile, leaf.keyPEM)
	writeFile(t, certFile, leaf.certPEM)
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.intermediate.Raw}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.root.Raw})...)
	writeFile(t, chainFile, chain)
	pol := parsePolicy(t, ca, "rules:\n- name: release\n  images: ['**']\n  authorities:\n  - keyless:\n      trustedRoot: root.json\n      issuer: "+issuer+"\n      subject: "+subjectEmail+"\n")

	for _, tc := range []struct {
		signer string
		format Format
	}{{"cosign3", FormatBundle}, {"cosign2", FormatLegacy}, {"bpfctl", FormatBundle}, {"bpfctl", FormatLegacy}} {
		t.Run(tc.signer+"-"+string(tc.format), func(t *testing.T) {
			name := fmt.Sprintf("keyless/%s-%s", tc.signer, tc.format)
			repo := newRepository(t, reg.Host, name)
			desc := pushArtifact(t, repo, name, "v1")
			ref := fmt.Sprintf("%s/%s@%s", reg.Host, name, desc.Digest)
			subject := Subject{Name: reg.Host + "/" + name, Descriptor: desc}
			certArgs := []string{"--certificate", certFile, "--certificate-chain", chainFile}

			switch tc.signer {
			case "cosign3":
				out, err := cosign3.run(t, nil, append([]string{"sign", "--key", keyFile, "--tlog-upload=false", "--use-signing-config=false", "--allow-http-registry", "--yes"}, append(certArgs, ref)...)...)
				if err != nil {
					t.Fatalf("cosign3 sign: %v\n%s", err, out)
				}
			case "cosign2":
				out, err := cosign2.run(t, nil, append([]string{"sign", "--key", keyFile, "--tlog-upload=false", "--allow-http-registry", "--yes"}, append(certArgs, ref)...)...)
				if err != nil {
					t.Fatalf("cosign2 sign: %v\n%s", err, out)
				}
			default:
				sign(t, repo, subject.Name, desc, leaf.priv, SignOptions{Format: tc.format, Certificate: leaf.certPEM, CertificateChain: chain})
			}

			rep, err := NewVerifier(pol, VerifierOptions{}).VerifyArtifact(ctx, repo, subject)
			if err != nil {
				t.Fatalf("bpfctl verify: %v", err)
			}
			if s := rep.Signatures[0]; s.Format != tc.format || s.Identity == nil || s.Identity.Subject != subjectEmail || s.Identity.Issuer != issuer {
				t.Errorf("bpfctl verify: signature %+v, want a %s signature by %s", s, tc.format, subjectEmail)
			}
			wrong := parsePolicy(t, ca, "rules:\n- name: release\n  images: ['**']\n  authorities:\n  - keyless:\n      trustedRoot: root.json\n      issuer: "+issuer+"\n      subject: someone@example.com\n")
			var denial *DenialError
			if _, err := NewVerifier(wrong, VerifierOptions{}).VerifyArtifact(ctx, repo, subject); !errors.As(err, &denial) || denial.Reason != ReasonUntrustedKey {
				t.Errorf("bpfctl verify, wrong identity: %v, want untrusted-key", err)
			}
			if tc.signer != "bpfctl" {
				return
			}

			identity := []string{"--certificate-oidc-issuer", issuer, "--insecure-ignore-tlog=true", "--insecure-ignore-sct=true", "--allow-http-registry"}
			verifier, args := cosign3, append([]string{"verify", "--trusted-root", ca.trustedRoot}, identity...)
			if tc.format == FormatLegacy {
				verifier, args = cosign2, append([]string{"verify", "--certificate-chain", chainFile}, identity...)
			}
			out, err := verifier.run(t, nil, append(args, "--certificate-identity", subjectEmail, ref)...)
			if err != nil {
				t.Errorf("%s verify: %v\n%s", verifier.name, err, out)
			}
			t.Logf("%s verify:\n%s", verifier.name, out)
			if out, err := verifier.run(t, nil, append(args, "--certificate-identity", "someone@example.com", ref)...); err == nil {
				t.Errorf("%s verify with a wrong identity succeeded:\n%s", verifier.name, out)
			}
		})
	}
}
