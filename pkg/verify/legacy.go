package verify

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// legacyPayload returns cosign's simple-signing payload for the manifest d,
// naming identity as the docker-reference.
func legacyPayload(identity string, d digest.Digest) ([]byte, error) {
	return json.Marshal(payload.SimpleContainerImage{
		Critical: payload.Critical{
			Identity: payload.Identity{DockerReference: identity},
			Image:    payload.Image{DockerManifestDigest: d.String()},
			Type:     payload.CosignSignatureType,
		},
	})
}

// parseLegacy reads one layer of a ".sig" manifest and its payload. Its
// error says why the layer is not a usable signature.
func parseLegacy(layer ocispec.Descriptor, data []byte) (*Signature, error) {
	b64, ok := layer.Annotations[AnnotationSignature]
	if !ok {
		return nil, fmt.Errorf("layer has no %s annotation", AnnotationSignature)
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(sig) == 0 {
		return nil, fmt.Errorf("%s annotation is not base64", AnnotationSignature)
	}
	var p payload.SimpleContainerImage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("simple-signing payload: %w", err)
	}
	if p.Critical.Type != payload.CosignSignatureType {
		return nil, fmt.Errorf("simple-signing payload type %q: want %q", p.Critical.Type, payload.CosignSignatureType)
	}
	claimed, err := digest.Parse(p.Critical.Image.DockerManifestDigest)
	if err != nil {
		return nil, fmt.Errorf("simple-signing payload digest %q: %w", p.Critical.Image.DockerManifestDigest, err)
	}
	s := &Signature{Format: FormatLegacy, message: data, sig: sig, claimed: []digest.Digest{claimed}}
	if certPEM, ok := layer.Annotations[AnnotationCertificate]; ok && certPEM != "" {
		if s.cert, err = parseCertificatePEM([]byte(certPEM)); err != nil {
			return nil, fmt.Errorf("%s annotation: %w", AnnotationCertificate, err)
		}
		if s.entity, err = legacyEntity(s.cert, data, sig); err != nil {
			return nil, err
		}
		s.artifact = data
	}
	return s, nil
}

// legacyEntity recasts a legacy keyless signature as a bundle with a message
// signature, so that sigstore-go checks its certificate like a bundle's.
func legacyEntity(cert *x509.Certificate, data, sig []byte) (*sgbundle.Bundle, error) {
	sum := sha256.Sum256(data)
	b, err := sgbundle.NewBundle(&protobundle.Bundle{
		MediaType: BundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: cert.Raw}},
		},
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]},
			Signature:     sig,
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("keyless signature: %w", err)
	}
	return b, nil
}

// parseCertificatePEM parses the first certificate of a PEM block list.
func parseCertificatePEM(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("no PEM certificate: %w", ErrInvalidCertificate)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrInvalidCertificate)
	}
	return cert, nil
}

// legacyConfig is the image config cosign writes for a ".sig" manifest; no
// one reads it, but registries and tools expect an image config there.
type legacyConfig struct {
	Architecture string          `json:"architecture"`
	Created      string          `json:"created"`
	History      []legacyHistory `json:"history"`
	OS           string          `json:"os"`
	RootFS       legacyRootFS    `json:"rootfs"`
	Config       struct{}        `json:"config"`
}

type legacyHistory struct {
	Created string `json:"created"`
}

type legacyRootFS struct {
	Type    string          `json:"type"`
	DiffIDs []digest.Digest `json:"diff_ids"`
}

// legacyConfigFor returns the config of a ".sig" manifest with layers.
func legacyConfigFor(layers []ocispec.Descriptor) ([]byte, error) {
	const zeroTime = "0001-01-01T00:00:00Z"
	c := legacyConfig{
		Created: zeroTime,
		History: []legacyHistory{{Created: zeroTime}},
		RootFS:  legacyRootFS{Type: "layers", DiffIDs: []digest.Digest{}},
	}
	for _, l := range layers {
		c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, l.Digest)
	}
	return json.Marshal(c)
}
