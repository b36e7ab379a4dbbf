package verify

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestVerifyKeyless signs with certificates from a certificate authority
// made in the test, whose trusted_root.json the policy names: no Sigstore
// service is involved.
func TestVerifyKeyless(t *testing.T) {
	ca, otherCA := newTestCA(t), newTestCA(t)
	const issuer = "https://issuer.example.com"
	now := time.Now().Add(-time.Minute)
	dev := ca.issue(t, "dev@example.com", issuer, now)
	mallory := ca.issue(t, "mallory@evil.example", issuer, now)
	otherIssuer := ca.issue(t, "dev@example.com", "https://other.example.com", now)
	stranger := otherCA.issue(t, "dev@example.com", issuer, now)
	expired := ca.issue(t, "dev@example.com", issuer, time.Now().Add(-2*time.Hour))

	keyless := func(identity string) string {
		return "rules:\n- name: ci\n  images: ['**']\n  authorities:\n  - keyless:\n      trustedRoot: root.json\n" + identity
	}
	exact := keyless("      issuer: " + issuer + "\n      subject: dev@example.com\n")
	regexps := keyless("      issuerRegExp: '^https://issuer\\.example\\.com$'\n      subjectRegExp: '^[a-z]+@example\\.com$'\n")

	type signer struct {
		priv *PrivateKey
		cert []byte
	}
	cases := map[string]struct {
		policy string
		signer signer
		want   Reason // "" for allow
		detail string
	}{
		"exact identity":       {policy: exact, signer: signer{dev.priv, dev.certPEM}},
		"regexp identity":      {policy: regexps, signer: signer{dev.priv, dev.certPEM}},
		"other subject":        {policy: exact, signer: signer{mallory.priv, mallory.certPEM}, want: ReasonUntrustedKey, detail: "mallory@evil.example"},
		"other subject (re)":   {policy: regexps, signer: signer{mallory.priv, mallory.certPEM}, want: ReasonUntrustedKey, detail: "identity does not match"},
		"other issuer":         {policy: exact, signer: signer{otherIssuer.priv, otherIssuer.certPEM}, want: ReasonUntrustedKey, detail: "https://other.example.com"},
		"untrusted CA":         {policy: exact, signer: signer{stranger.priv, stranger.certPEM}, want: ReasonUntrustedKey, detail: "x509: certificate signed by unknown authority"},
		"expired certificate":  {policy: exact, signer: signer{expired.priv, expired.certPEM}, want: ReasonUntrustedKey, detail: "certificate expired at"},
		"key, not certificate": {policy: exact, signer: signer{key(t, 0).priv, nil}, want: ReasonUntrustedKey, detail: "trusts only certificates"},
	}
	for name, tc := range cases {
		for _, format := range []Format{FormatBundle, FormatLegacy} {
			t.Run(name+"/"+string(format), func(t *testing.T) {
				s, subj := layoutWithArtifact(t, "a")
				sign(t, s, subj.Name, subj.Descriptor, tc.signer.priv, SignOptions{Format: format, Certificate: tc.signer.cert})
				rep, err := NewVerifier(parsePolicy(t, ca, tc.policy), VerifierOptions{}).VerifyArtifact(context.Background(), s, subj)
				t.Logf("verify: %v", err)
				var denial *DenialError
				switch {
				case tc.want == "" && err != nil:
					t.Fatalf("VerifyArtifact: %v", err)
				case tc.want == "":
					id := rep.Signatures[0].Identity
					if id == nil || id.Subject != "dev@example.com" || id.Issuer != issuer || !strings.HasPrefix(rep.Signatures[0].Authority, "keyless ") {
						t.Errorf("signature result %+v does not name the identity and authority", rep.Signatures[0])
					}
				case !errors.As(err, &denial):
					t.Fatalf("err = %v, want a denial", err)
				case denial.Reason != tc.want || !strings.Contains(denial.Detail, tc.detail):
					t.Errorf("denial %s: %s; want %s mentioning %q", denial.Reason, denial.Detail, tc.want, tc.detail)
				}
			})
		}
	}
}

func TestSignCertificateMismatch(t *testing.T) {
	ca := newTestCA(t)
	dev := ca.issue(t, "dev@example.com", "https://issuer.example.com", time.Now())
	s, subj := layoutWithArtifact(t, "a")
	_, err := Sign(context.Background(), s, subj, key(t, 0).priv, SignOptions{Certificate: dev.certPEM})
	if !errors.Is(err, ErrInvalidCertificate) {
		t.Errorf("Sign with another key's certificate: %v, want ErrInvalidCertificate", err)
	}
	_, err = Sign(context.Background(), s, subj, key(t, 0).priv, SignOptions{Certificate: []byte("junk")})
	if !errors.Is(err, ErrInvalidCertificate) {
		t.Errorf("Sign with a junk certificate: %v, want ErrInvalidCertificate", err)
	}
}
