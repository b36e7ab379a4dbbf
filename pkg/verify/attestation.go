package verify

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"oras.land/oras-go/v2/errdef"
)

// envelope is a DSSE envelope as JSON, as cosign stores one per layer of a
// legacy attestation manifest.
type envelope struct {
	PayloadType string              `json:"payloadType"`
	Payload     []byte              `json:"payload"`
	Signatures  []envelopeSignature `json:"signatures"`
}

type envelopeSignature struct {
	KeyID string `json:"keyid"`
	Sig   []byte `json:"sig"`
}

// fetchLegacyAttestations reads the layers of subject's ".att" manifest, at
// most limit.
func fetchLegacyAttestations(ctx context.Context, src Source, subject ocispec.Descriptor, limit int) ([]*Signature, error) {
	tag := LegacyAttestationTag(subject.Digest)
	desc, err := src.Resolve(ctx, tag)
	if errors.Is(err, errdef.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("attestation tag %s: %w", tag, err)
	}
	raw, err := fetchLimited(ctx, src, desc, maxManifestSize)
	if err != nil {
		if unusable(err) {
			return []*Signature{unreadable(FormatLegacy, desc.Digest, "", err)}, nil
		}
		return nil, fmt.Errorf("attestation manifest %s: %w", tag, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return []*Signature{unreadable(FormatLegacy, desc.Digest, "", fmt.Errorf("attestation manifest: %w", err))}, nil
	}
	if len(m.Layers) > limit {
		return nil, fmt.Errorf("%s has %d layers, more than %d: %w", tag, len(m.Layers), limit, ErrTooManySignatures)
	}
	return inParallel(ctx, len(m.Layers), func(ctx context.Context, i int) (*Signature, error) {
		layer := m.Layers[i]
		if layer.MediaType != DSSEMediaType {
			return unreadable(FormatLegacy, desc.Digest, layer.Digest, fmt.Errorf("layer media type %q: want %s", layer.MediaType, DSSEMediaType)), nil
		}
		data, err := fetchLimited(ctx, src, layer, maxLayerSize)
		if err != nil {
			if unusable(err) {
				return unreadable(FormatLegacy, desc.Digest, layer.Digest, err), nil
			}
			return nil, fmt.Errorf("attestation %s: %w", layer.Digest, err)
		}
		s, err := parseEnvelope(layer, data)
		if err != nil {
			return unreadable(FormatLegacy, desc.Digest, layer.Digest, err), nil
		}
		s.Manifest, s.Layer = desc.Digest, layer.Digest
		return s, nil
	})
}

// parseEnvelope reads a legacy attestation layer: a DSSE envelope over an
// in-toto statement, with the signing certificate, if any, in the layer's
// annotation.
func parseEnvelope(layer ocispec.Descriptor, data []byte) (*Signature, error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("DSSE envelope: %w", err)
	}
	if env.PayloadType != InTotoPayloadType {
		return nil, fmt.Errorf("DSSE payload type %q: want %s", env.PayloadType, InTotoPayloadType)
	}
	if n := len(env.Signatures); n != 1 {
		return nil, fmt.Errorf("DSSE envelope has %d signatures: want 1", n)
	}
	s, err := parseStatement(env.Payload)
	if err != nil {
		return nil, err
	}
	if s.predicateType == SignPredicateType {
		return nil, fmt.Errorf("statement has predicate type %s: a signature, not an attestation", SignPredicateType)
	}
	s.Format = FormatLegacy
	s.message = pae(env.PayloadType, env.Payload)
	s.sig = env.Signatures[0].Sig
	if certPEM := layer.Annotations[AnnotationCertificate]; certPEM != "" {
		if s.cert, err = parseCertificatePEM([]byte(certPEM)); err != nil {
			return nil, fmt.Errorf("%s annotation: %w", AnnotationCertificate, err)
		}
		if s.entity, err = dsseEntity(s.cert, env.PayloadType, env.Payload, s.sig); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// dsseEntity recasts a legacy keyless attestation as a bundle, so that
// sigstore-go checks its certificate like a bundle's.
func dsseEntity(cert *x509.Certificate, payloadType string, payload, sig []byte) (*sgbundle.Bundle, error) {
	b, err := sgbundle.NewBundle(&protobundle.Bundle{
		MediaType: BundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: cert.Raw}},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: payload, PayloadType: payloadType, Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("keyless attestation: %w", err)
	}
	return b, nil
}
