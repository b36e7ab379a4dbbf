package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"google.golang.org/protobuf/encoding/protojson"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
)

// Predicate types of in-toto attestations, and the short names cosign's
// attest --type gives them.
const (
	// PredicateSLSAProvenance02 is SLSA provenance v0.2 (cosign's
	// "slsaprovenance").
	PredicateSLSAProvenance02 = "https://slsa.dev/provenance/v0.2"
	// PredicateSLSAProvenance1 is SLSA provenance v1.
	PredicateSLSAProvenance1 = "https://slsa.dev/provenance/v1"
	// PredicateSPDX is an SPDX document.
	PredicateSPDX = "https://spdx.dev/Document"
)

var predicateNames = map[string]string{
	"slsaprovenance":   PredicateSLSAProvenance02,
	"slsaprovenance02": PredicateSLSAProvenance02,
	"slsaprovenance1":  PredicateSLSAProvenance1,
	"spdx":             PredicateSPDX,
	"spdxjson":         PredicateSPDX,
	"cyclonedx":        "https://cyclonedx.org/bom",
	"link":             "https://in-toto.io/Link/v1",
	"openvex":          "https://openvex.dev/ns",
	"vuln":             "https://cosign.sigstore.dev/attestation/vuln/v1",
}

// PredicateType returns the predicate type URI that name stands for: one of
// cosign's short names (slsaprovenance is SLSA provenance v0.2,
// slsaprovenance1 v1, spdx, spdxjson, cyclonedx, link, openvex, vuln), or
// name itself when it is an absolute URI.
func PredicateType(name string) (string, error) {
	if uri, ok := predicateNames[name]; ok {
		return uri, nil
	}
	u, err := url.Parse(name)
	if err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "") || strings.ContainsAny(name, " \t\n") {
		return "", fmt.Errorf("predicate type %q: want %s, or an absolute URI", name, strings.Join(slices.Sorted(maps.Keys(predicateNames)), ", "))
	}
	if name == SignPredicateType {
		return "", fmt.Errorf("predicate type %s is a signature's, not an attestation's", name)
	}
	return name, nil
}

// AttestOptions configures Attest. The zero value stamps the referrer with
// the current time.
type AttestOptions struct {
	// Now stamps the referrer manifest's creation time; nil means time.Now.
	Now func() time.Time
}

// Attest signs an in-toto statement that the manifest or index
// subject.Descriptor has predicate (of predicateType, a URI) with key, and
// stores it in dst as cosign v3's attest does: a Sigstore bundle v0.3 (DSSE
// envelope) in a referrer manifest of the subject, labelled with the
// predicate type. The predicate is the JSON document given, or, when it is
// not JSON (an SPDX tag-value document), the text as a JSON string. It
// returns the descriptor of the referrer manifest.
func Attest(ctx context.Context, dst Destination, subject Subject, key *PrivateKey, predicateType string, predicate []byte, opts AttestOptions) (ocispec.Descriptor, error) {
	if err := subject.Descriptor.Digest.Validate(); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("subject %s: %w", subject.Name, err)
	}
	uri, err := PredicateType(predicateType)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	pred, err := predicateJSON(uri, predicate)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	data, err := makeAttestationBundle(key, subject, uri, pred)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("attest %s: %w", subject, err)
	}
	layer := content.NewDescriptorFromBytes(BundleMediaType, data)
	if err := pushIfMissing(ctx, dst, layer, data); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("attest %s: %w", subject, err)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	desc, err := oras.PackManifest(ctx, dst, oras.PackManifestVersion1_1, BundleMediaType, oras.PackManifestOptions{
		Subject: &ocispec.Descriptor{MediaType: subject.Descriptor.MediaType, Digest: subject.Descriptor.Digest, Size: subject.Descriptor.Size},
		Layers:  []ocispec.Descriptor{layer},
		ManifestAnnotations: map[string]string{
			AnnotationBundleContent:       "dsse-envelope",
			AnnotationBundlePredicateType: uri,
			ocispec.AnnotationCreated:     now().UTC().Format(time.RFC3339),
		},
	})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("attest %s: %w", subject, err)
	}
	return desc, nil
}

// predicateJSON returns the predicate as JSON: a JSON object as is; for
// SPDX, text that is not JSON as a JSON string (as cosign does).
func predicateJSON(uri string, predicate []byte) (json.RawMessage, error) {
	var obj map[string]any
	if err := json.Unmarshal(predicate, &obj); err == nil {
		return json.RawMessage(predicate), nil
	} else if uri != PredicateSPDX {
		return nil, fmt.Errorf("predicate for %s is not a JSON object: %v", uri, err)
	}
	return json.Marshal(string(predicate))
}

// makeAttestationBundle signs the statement about subject and returns the
// bundle's JSON.
func makeAttestationBundle(key *PrivateKey, subject Subject, predicateType string, predicate json.RawMessage) ([]byte, error) {
	d := subject.Descriptor.Digest
	payload, err := json.Marshal(statement{
		Type:          inTotoStatementTypeV01,
		Subject:       []statementSubject{{Name: subject.Name, Digest: map[string]string{d.Algorithm().String(): d.Encoded()}}},
		PredicateType: predicateType,
		Predicate:     predicate,
	})
	if err != nil {
		return nil, err
	}
	sig, err := key.sign(pae(InTotoPayloadType, payload))
	if err != nil {
		return nil, err
	}
	b := &protobundle.Bundle{
		MediaType: BundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: key.Public().hint()}},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: payload, PayloadType: InTotoPayloadType, Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}
	if _, err := sgbundle.NewBundle(b); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return protojson.Marshal(b)
}
