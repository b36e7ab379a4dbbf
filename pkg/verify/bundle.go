package verify

import (
	"crypto/x509"
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"google.golang.org/protobuf/encoding/protojson"
)

// statement is the part of an in-toto statement a signature needs. cosign
// signs an image by signing a statement whose subject is the image digest,
// with predicate type SignPredicateType and an empty predicate.
type statement struct {
	Type          string             `json:"_type"`
	Subject       []statementSubject `json:"subject"`
	PredicateType string             `json:"predicateType"`
	Predicate     json.RawMessage    `json:"predicate"`
}

type statementSubject struct {
	Name   string            `json:"name,omitempty"`
	Digest map[string]string `json:"digest"`
}

// in-toto statement types a bundle may carry.
var statementTypes = map[string]bool{
	inTotoStatementType:    true,
	inTotoStatementTypeV01: true,
}

// signStatement returns the in-toto statement that signs the manifest d.
func signStatement(d digest.Digest) ([]byte, error) {
	return json.Marshal(statement{
		Type:          inTotoStatementType,
		Subject:       []statementSubject{{Digest: map[string]string{d.Algorithm().String(): d.Encoded()}}},
		PredicateType: SignPredicateType,
		Predicate:     json.RawMessage("{}"),
	})
}

// parseStatement reads an in-toto statement: its predicate type and
// predicate, and the digests its subjects name.
func parseStatement(payload []byte) (*Signature, error) {
	var st statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("in-toto statement: %w", err)
	}
	if !statementTypes[st.Type] {
		return nil, fmt.Errorf("in-toto statement type %q: want %s", st.Type, inTotoStatementType)
	}
	if st.PredicateType == "" {
		return nil, fmt.Errorf("in-toto statement without a predicate type")
	}
	s := &Signature{predicateType: st.PredicateType, predicate: st.Predicate}
	for _, subj := range st.Subject {
		for alg, hex := range subj.Digest {
			if d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex); d.Validate() == nil {
				s.claimed = append(s.claimed, d)
			}
		}
	}
	return s, nil
}

// pae is DSSE's pre-authentication encoding: what an envelope's signature
// signs.
func pae(payloadType string, payload []byte) []byte {
	return fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(payload), payload)
}

// makeBundle signs the statement for d with key and returns the bundle's
// JSON. With cert the bundle carries the certificate; without, the key's
// hint.
func makeBundle(key *PrivateKey, cert *x509.Certificate, d digest.Digest) ([]byte, error) {
	payload, err := signStatement(d)
	if err != nil {
		return nil, err
	}
	sig, err := key.sign(pae(InTotoPayloadType, payload))
	if err != nil {
		return nil, err
	}
	material := &protobundle.VerificationMaterial{
		Content: &protobundle.VerificationMaterial_PublicKey{
			PublicKey: &protocommon.PublicKeyIdentifier{Hint: key.Public().hint()},
		},
	}
	if cert != nil {
		material.Content = &protobundle.VerificationMaterial_Certificate{
			Certificate: &protocommon.X509Certificate{RawBytes: cert.Raw},
		}
	}
	b := &protobundle.Bundle{
		MediaType:            BundleMediaType,
		VerificationMaterial: material,
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload:     payload,
			PayloadType: InTotoPayloadType,
			Signatures:  []*protodsse.Signature{{Sig: sig}},
		}},
	}
	if _, err := sgbundle.NewBundle(b); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return protojson.Marshal(b)
}

// leafOnly replaces a certificate chain in a bundle's verification material
// by its leaf. cosign v3 signing with --certificate-chain writes the chain
// into v0.3 bundles, which allow only the leaf; the chain adds nothing, since
// trust comes from the trusted root's certificate authorities.
func leafOnly(b *protobundle.Bundle) {
	chain := b.GetVerificationMaterial().GetX509CertificateChain()
	if chain == nil || len(chain.GetCertificates()) == 0 {
		return
	}
	b.VerificationMaterial.Content = &protobundle.VerificationMaterial_Certificate{Certificate: chain.GetCertificates()[0]}
}

// parseBundle reads a bundle layer. Its error says why the bundle is not a
// usable image signature.
func parseBundle(data []byte) (*Signature, error) {
	s, err := parseBundleStatement(data)
	if err != nil {
		return nil, err
	}
	if s.predicateType != SignPredicateType {
		return nil, fmt.Errorf("statement has predicate type %q: an attestation, not a signature (%s)", s.predicateType, SignPredicateType)
	}
	return s, nil
}

// parseAttestationBundle reads a bundle layer holding an attestation: a
// statement of any predicate type but a signature's.
func parseAttestationBundle(data []byte) (*Signature, error) {
	s, err := parseBundleStatement(data)
	if err != nil {
		return nil, err
	}
	if s.predicateType == SignPredicateType {
		return nil, fmt.Errorf("statement has predicate type %s: a signature, not an attestation", SignPredicateType)
	}
	return s, nil
}

// parseBundleStatement reads a bundle layer holding a DSSE envelope over an
// in-toto statement.
func parseBundleStatement(data []byte) (*Signature, error) {
	var pb protobundle.Bundle
	if err := protojson.Unmarshal(data, &pb); err != nil {
		return nil, fmt.Errorf("not a Sigstore bundle: %w", err)
	}
	leafOnly(&pb)
	b, err := sgbundle.NewBundle(&pb)
	if err != nil {
		return nil, fmt.Errorf("not a Sigstore bundle: %w", err)
	}
	if !b.MinVersion("v0.3") {
		return nil, fmt.Errorf("bundle media type %q: want version 0.3 or later", b.GetMediaType())
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, fmt.Errorf("bundle holds a message signature, not a DSSE envelope over an in-toto statement")
	}
	if env.GetPayloadType() != InTotoPayloadType {
		return nil, fmt.Errorf("DSSE payload type %q: want %s", env.GetPayloadType(), InTotoPayloadType)
	}
	if n := len(env.GetSignatures()); n != 1 {
		return nil, fmt.Errorf("DSSE envelope has %d signatures: want 1", n)
	}
	s, err := parseStatement(env.GetPayload())
	if err != nil {
		return nil, err
	}
	s.Format = FormatBundle
	s.message = pae(env.GetPayloadType(), env.GetPayload())
	s.sig = env.GetSignatures()[0].GetSig()
	s.entity = b
	switch m := b.GetVerificationMaterial().GetContent().(type) {
	case *protobundle.VerificationMaterial_PublicKey:
		s.hint = m.PublicKey.GetHint()
	case *protobundle.VerificationMaterial_Certificate:
		cert, err := x509.ParseCertificate(m.Certificate.GetRawBytes())
		if err != nil {
			return nil, fmt.Errorf("bundle certificate: %w", err)
		}
		s.cert = cert
	default:
		return nil, fmt.Errorf("bundle verification material %T: want a public key or a certificate", m)
	}
	return s, nil
}
