package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/oci"
)

const testPassword = "test-password"

// store is what the tests sign into and verify from: an OCI layout or a
// registry repository.
type store interface {
	Source
	Destination
}

// newLayout returns an empty OCI layout in a temporary directory and its
// subject name.
func newLayout(t *testing.T) (*oci.Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := oci.NewWithContext(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, "oci:" + dir
}

// pushArtifact stores a small artifact whose one layer holds body, tags it
// and returns its manifest descriptor.
func pushArtifact(t *testing.T, dst oras.Target, body, tag string) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	data := []byte(body)
	layer := content.NewDescriptorFromBytes("application/vnd.bpfd.test.object", data)
	if err := dst.Push(ctx, layer, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	desc, err := oras.PackManifest(ctx, dst, oras.PackManifestVersion1_1, "application/vnd.bpfd.test", oras.PackManifestOptions{
		Layers:              []ocispec.Descriptor{layer},
		ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "2024-01-01T00:00:00Z"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if tag != "" {
		if err := dst.Tag(ctx, desc, tag); err != nil {
			t.Fatal(err)
		}
	}
	return desc
}

// testKey is a generated key pair, with its files written to a directory.
type testKey struct {
	priv    *PrivateKey
	pub     *PublicKey
	keyFile string
	pubFile string
}

// newTestKey generates a key pair and writes it to a temporary directory.
func newTestKey(t *testing.T) testKey {
	t.Helper()
	k, err := generateTestKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func generateTestKey(dir string) (testKey, error) {
	kp, err := GenerateKeyPair([]byte(testPassword))
	if err != nil {
		return testKey{}, err
	}
	priv, err := LoadPrivateKey(kp.PrivatePEM, []byte(testPassword))
	if err != nil {
		return testKey{}, err
	}
	k := testKey{priv: priv, pub: priv.Public(), keyFile: filepath.Join(dir, "cosign.key"), pubFile: filepath.Join(dir, "cosign.pub")}
	if err := os.WriteFile(k.keyFile, kp.PrivatePEM, 0o600); err != nil {
		return testKey{}, err
	}
	return k, os.WriteFile(k.pubFile, kp.PublicPEM, 0o644)
}

// sharedKeys are key pairs made once for the package's tests: encrypting
// and decrypting a cosign key costs a scrypt run each.
var (
	sharedKeysDir string
	sharedKeysMu  sync.Mutex
	sharedKeys    = map[int]testKey{}
)

// key returns shared key pair i (0, 1, 2...).
func key(t *testing.T, i int) testKey {
	t.Helper()
	sharedKeysMu.Lock()
	defer sharedKeysMu.Unlock()
	if k, ok := sharedKeys[i]; ok {
		return k
	}
	dir := filepath.Join(sharedKeysDir, strconv.Itoa(i))
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	k, err := generateTestKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	sharedKeys[i] = k
	return k
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bpfd-verify-keys-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sharedKeysDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func sign(t *testing.T, dst Destination, name string, desc ocispec.Descriptor, k *PrivateKey, opts SignOptions) ocispec.Descriptor {
	t.Helper()
	got, err := Sign(context.Background(), dst, Subject{Name: name, Descriptor: desc}, k, opts)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return got
}

// testCA is a Fulcio-like certificate authority made in the test, with its
// trusted_root.json written to a file.
type testCA struct {
	root, intermediate *x509.Certificate
	intermediateKey    crypto.Signer
	trustedRoot        string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	rootCert, rootKey, err := ca.GenerateRootCa()
	if err != nil {
		t.Fatal(err)
	}
	inter, interKey, err := ca.GenerateFulcioIntermediate(rootCert, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, []root.CertificateAuthority{&root.FulcioCertificateAuthority{
		Root:                rootCert,
		Intermediates:       []*x509.Certificate{inter},
		ValidityPeriodStart: time.Now().Add(-time.Hour),
		URI:                 "https://fulcio.test",
	}}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "trusted_root.json")
	writeFile(t, path, data)
	return &testCA{root: rootCert, intermediate: inter, intermediateKey: interKey, trustedRoot: path}
}

// issued is a key and the certificate the test CA issued for it.
type issued struct {
	priv    *PrivateKey
	keyPEM  []byte // encrypted with testPassword, as cosign reads it
	certPEM []byte
}

// issue returns a key and a certificate for it naming subject and issuer,
// valid from notBefore for ten minutes.
func (c *testCA) issue(t *testing.T, subject, issuer string, notBefore time.Time) issued {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.GenerateLeafCert(subject, issuer, notBefore, key, c.intermediate, c.intermediateKey)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := encrypted.Encrypt(der, []byte(testPassword))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: sigstorePrivateKeyType, Bytes: enc})
	priv, err := LoadPrivateKey(keyPEM, []byte(testPassword))
	if err != nil {
		t.Fatal(err)
	}
	return issued{priv: priv, keyPEM: keyPEM, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})}
}
