package verify

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestKeyPairRoundTrip(t *testing.T) {
	kp, err := GenerateKeyPair([]byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(kp.PrivatePEM, []byte("-----BEGIN "+sigstorePrivateKeyType+"-----")) {
		t.Errorf("private key is not cosign's encrypted PEM:\n%s", kp.PrivatePEM)
	}
	priv, err := LoadPrivateKey(kp.PrivatePEM, []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKey(kp.PublicPEM)
	if err != nil {
		t.Fatal(err)
	}
	if priv.Public().Fingerprint() != pub.Fingerprint() || !bytes.Equal(pub.PEM(), kp.PublicPEM) {
		t.Errorf("public key %s does not match the private key's %s", pub.Fingerprint(), priv.Public().Fingerprint())
	}
	sig, err := priv.sign([]byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if !pub.verify(sig, []byte("hello")) || pub.verify(sig, []byte("hellO")) {
		t.Error("signature does not verify as it should")
	}

	// Older cosign releases wrote another PEM type around the same bytes.
	old := bytes.ReplaceAll(kp.PrivatePEM, []byte(sigstorePrivateKeyType), []byte(cosignPrivateKeyType))
	if _, err := LoadPrivateKey(old, []byte("s3cret")); err != nil {
		t.Errorf("%s: %v", cosignPrivateKeyType, err)
	}
}

func TestLoadPrivateKeyErrors(t *testing.T) {
	kp, err := GenerateKeyPair([]byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(kp.PrivatePEM)
	block.Bytes = block.Bytes[:len(block.Bytes)/2]
	cases := map[string]struct {
		pem      []byte
		password string
		want     error
	}{
		"wrong password":   {kp.PrivatePEM, "guess", ErrWrongPassword},
		"empty password":   {kp.PrivatePEM, "", ErrWrongPassword},
		"public key":       {kp.PublicPEM, "s3cret", ErrInvalidKey},
		"not PEM":          {[]byte("hello"), "s3cret", ErrInvalidKey},
		"empty file":       {nil, "s3cret", ErrInvalidKey},
		"truncated cipher": {pem.EncodeToMemory(block), "s3cret", ErrWrongPassword},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := LoadPrivateKey(tc.pem, []byte(tc.password))
			if !errors.Is(err, tc.want) {
				t.Errorf("LoadPrivateKey error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParsePublicKey(t *testing.T) {
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edDER, err := x509.MarshalPKIXPublicKey(edPub)
	if err != nil {
		t.Fatal(err)
	}
	cert := newTestCA(t).issue(t, "a@example.com", "https://issuer", time.Now()).certPEM
	kp, err := GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		pem  []byte
		want string // "" for success, else a substring of the error
	}{
		"ecdsa":            {kp.PublicPEM, ""},
		"ed25519":          {pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: edDER}), ""},
		"certificate":      {cert, `PEM block "CERTIFICATE" is not a public key`},
		"private key":      {kp.PrivatePEM, `is not a public key`},
		"garbage":          {[]byte("ssh-ed25519 AAAA..."), "no PEM block"},
		"garbage in a PEM": {pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")}), "invalid key"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			k, err := ParsePublicKey(tc.pem)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("ParsePublicKey: %v", err)
			case tc.want == "" && !strings.HasPrefix(k.Fingerprint(), "sha256:"):
				t.Errorf("fingerprint %q", k.Fingerprint())
			case tc.want != "" && (!errors.Is(err, ErrInvalidKey) || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("ParsePublicKey error = %v, want ErrInvalidKey mentioning %q", err, tc.want)
			}
		})
	}
}
