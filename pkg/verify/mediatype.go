package verify

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Format is how a signature is stored next to the artifact it signs.
type Format string

// The two formats cosign reads and writes.
const (
	// FormatBundle is a Sigstore bundle v0.3 holding a DSSE envelope over an
	// in-toto statement whose subject is the artifact digest, stored as an
	// OCI 1.1 referrer of the artifact (cosign v3's default).
	FormatBundle Format = "bundle"
	// FormatLegacy is cosign's simple-signing payload, one layer per
	// signature of the manifest tagged "sha256-<hex>.sig" (cosign v2's
	// default).
	FormatLegacy Format = "legacy"
)

// ParseFormat returns the format named s; "" is FormatBundle.
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case "", FormatBundle:
		return FormatBundle, nil
	case FormatLegacy:
		return FormatLegacy, nil
	}
	return "", fmt.Errorf("signature format %q: want %s or %s", s, FormatBundle, FormatLegacy)
}

// Media types, annotations and payload types of both formats, as cosign
// writes them.
const (
	// BundleMediaType is the media type of a bundle layer and the artifactType
	// of the referrer manifest that holds it.
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// bundleMediaTypePrefix is common to every bundle version's media type.
	bundleMediaTypePrefix = "application/vnd.dev.sigstore.bundle"
	// AnnotationBundleContent says what the bundle wraps ("dsse-envelope").
	AnnotationBundleContent = "dev.sigstore.bundle.content"
	// AnnotationBundlePredicateType names the in-toto predicate type of the
	// bundle's statement.
	AnnotationBundlePredicateType = "dev.sigstore.bundle.predicateType"
	// SignPredicateType is the predicate type of an image signature (as
	// opposed to an attestation) in cosign's bundles.
	SignPredicateType = "https://sigstore.dev/cosign/sign/v1"
	// InTotoPayloadType is the DSSE payload type of an in-toto statement.
	InTotoPayloadType = "application/vnd.in-toto+json"
	// inTotoStatementType is the _type of an in-toto v1 statement;
	// inTotoStatementTypeV01 the older one, which cosign's attest writes.
	inTotoStatementType    = "https://in-toto.io/Statement/v1"
	inTotoStatementTypeV01 = "https://in-toto.io/Statement/v0.1"

	// DSSEMediaType is the media type of a layer of cosign's legacy
	// attestation manifest (tagged "sha256-<hex>.att"): a DSSE envelope.
	DSSEMediaType = "application/vnd.dsse.envelope.v1+json"
	// AnnotationPredicateType names the predicate type of a legacy
	// attestation layer.
	AnnotationPredicateType = "predicateType"

	// SimpleSigningMediaType is the media type of a legacy signature layer,
	// whose content is the signed payload.
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// AnnotationSignature holds a legacy layer's base64 signature.
	AnnotationSignature = "dev.cosignproject.cosign/signature"
	// AnnotationCertificate holds a legacy layer's PEM signing certificate.
	AnnotationCertificate = "dev.sigstore.cosign/certificate"
	// AnnotationChain holds a legacy layer's PEM certificate chain.
	AnnotationChain = "dev.sigstore.cosign/chain"
)

// LegacySignatureTag returns the tag of the legacy signature manifest of the
// artifact with digest d: "sha256-<hex>.sig". Copying an artifact with its
// legacy signatures means copying this tag too.
func LegacySignatureTag(d digest.Digest) string {
	return strings.Replace(d.String(), ":", "-", 1) + ".sig"
}

// LegacyAttestationTag returns the tag of cosign's legacy attestation
// manifest of the artifact with digest d: "sha256-<hex>.att".
func LegacyAttestationTag(d digest.Digest) string {
	return strings.Replace(d.String(), ":", "-", 1) + ".att"
}

func isBundleMediaType(mediaType string) bool {
	return strings.HasPrefix(mediaType, bundleMediaTypePrefix)
}
