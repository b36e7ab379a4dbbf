package verify

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// PEM block types of cosign's encrypted private keys: cosign 2 and later write
// the first, older releases the second. The block holds a PKCS #8 key
// encrypted with scrypt and NaCl secretbox.
const (
	sigstorePrivateKeyType = "ENCRYPTED SIGSTORE PRIVATE KEY"
	cosignPrivateKeyType   = "ENCRYPTED COSIGN PRIVATE KEY"
)

// KeyPair is a new key pair in cosign's file formats.
type KeyPair struct {
	// PrivatePEM is the encrypted private key (cosign.key).
	PrivatePEM []byte
	// PublicPEM is the PKIX public key (cosign.pub).
	PublicPEM []byte
}

// GenerateKeyPair returns a new ECDSA P-256 key pair, the private key
// encrypted with password, exactly as `cosign generate-key-pair` writes it.
func GenerateKeyPair(password []byte) (*KeyPair, error) {
	keys, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return password, nil })
	if err != nil {
		return nil, fmt.Errorf("generate key pair: %w", err)
	}
	return &KeyPair{PrivatePEM: keys.PrivateBytes, PublicPEM: keys.PublicBytes}, nil
}

// PrivateKey is a decrypted signing key.
type PrivateKey struct {
	signer signature.SignerVerifier
	public *PublicKey
}

// LoadPrivateKey decrypts a cosign private key (from `cosign
// generate-key-pair` or GenerateKeyPair) with password. It returns
// ErrInvalidKey when pemBytes is not such a key and ErrWrongPassword when it
// does not decrypt.
func LoadPrivateKey(pemBytes, password []byte) (*PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fmt.Errorf("no PEM block: %w", ErrInvalidKey)
	}
	if block.Type != sigstorePrivateKeyType && block.Type != cosignPrivateKeyType {
		return nil, fmt.Errorf("PEM block %q is not an encrypted cosign private key: %w", block.Type, ErrInvalidKey)
	}
	der, err := encrypted.Decrypt(block.Bytes, password)
	if err != nil {
		return nil, ErrWrongPassword
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("decrypted key is not PKCS #8: %v: %w", err, ErrInvalidKey)
	}
	signer, err := signature.LoadDefaultSignerVerifier(priv, options.WithED25519ph())
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrInvalidKey)
	}
	pub, err := signer.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrInvalidKey)
	}
	public, err := newPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return &PrivateKey{signer: signer, public: public}, nil
}

// Public returns the public half of k.
func (k *PrivateKey) Public() *PublicKey { return k.public }

// sign signs message (hashing it as the key's algorithm requires).
func (k *PrivateKey) sign(message []byte) ([]byte, error) {
	sig, err := k.signer.SignMessage(bytes.NewReader(message))
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return sig, nil
}

// PublicKey is a verification key: ECDSA (P-256, P-384, P-521), RSA or
// Ed25519, as cosign uses them.
type PublicKey struct {
	key      crypto.PublicKey
	verifier signature.Verifier
	pem      []byte
	sum      [sha256.Size]byte
}

// ParsePublicKey parses a PEM public key such as cosign.pub. It returns
// ErrInvalidKey when pemBytes holds no public key.
func ParsePublicKey(pemBytes []byte) (*PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fmt.Errorf("no PEM block: %w", ErrInvalidKey)
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("PEM block %q is not a public key: %w", block.Type, ErrInvalidKey)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrInvalidKey)
	}
	return newPublicKey(pub)
}

func newPublicKey(pub crypto.PublicKey) (*PublicKey, error) {
	if err := cryptoutils.ValidatePubKey(pub); err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrInvalidKey)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrInvalidKey)
	}
	verifier, err := signature.LoadDefaultVerifier(pub, options.WithED25519ph())
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrInvalidKey)
	}
	block := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return &PublicKey{key: pub, verifier: verifier, pem: block, sum: sha256.Sum256(der)}, nil
}

// Fingerprint returns "sha256:<hex>", the SHA-256 of the key's DER
// (PKIX) encoding. Reports name keys by it.
func (k *PublicKey) Fingerprint() string {
	return "sha256:" + hex.EncodeToString(k.sum[:])
}

// hint returns the key hint cosign and sigstore-go put in a bundle's
// verification material: the base64 SHA-256 of the DER encoding.
func (k *PublicKey) hint() string {
	return base64.StdEncoding.EncodeToString(k.sum[:])
}

// PEM returns the key in PEM, as cosign.pub holds it.
func (k *PublicKey) PEM() []byte { return bytes.Clone(k.pem) }

// verify reports whether sig is k's signature over message.
func (k *PublicKey) verify(sig, message []byte) bool {
	return k.verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(message)) == nil
}

// fingerprintOfHint turns a bundle's key hint into a fingerprint, or returns
// "" when the hint is not a SHA-256.
func fingerprintOfHint(hint string) string {
	sum, err := base64.StdEncoding.DecodeString(hint)
	if err != nil || len(sum) != sha256.Size {
		return ""
	}
	return "sha256:" + hex.EncodeToString(sum)
}
