package verify

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
)

// SignOptions configures Sign. The zero value signs in the bundle format
// with the key alone.
type SignOptions struct {
	// Format is the signature format; "" means FormatBundle.
	Format Format
	// Identity is the docker-reference a legacy payload names; "" means the
	// subject's Name. Bundles name only the digest.
	Identity string
	// Certificate is a PEM certificate for the key, making a certificate
	// (keyless-style) signature that verifies against a trusted root rather
	// than a key. Empty signs with the key alone.
	Certificate []byte
	// CertificateChain is the PEM chain of Certificate, kept with legacy
	// signatures for tools that read it; bundles rely on the trusted root.
	CertificateChain []byte
	// Now stamps the bundle manifest's creation time; nil means time.Now.
	Now func() time.Time
}

// Sign signs the manifest or index subject.Descriptor with key and writes
// the signature to dst: a bundle as a referrer manifest of the subject (on a
// registry without the referrers API, oras-go also records it under the
// "sha256-<hex>" tag), or a legacy layer appended to the subject's ".sig"
// manifest. It returns the descriptor of the manifest written. Sign contacts
// no transparency log or certificate authority.
func Sign(ctx context.Context, dst Destination, subject Subject, key *PrivateKey, opts SignOptions) (ocispec.Descriptor, error) {
	if err := subject.Descriptor.Digest.Validate(); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("subject %s: %w", subject.Name, err)
	}
	format, err := ParseFormat(string(opts.Format))
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var cert *x509.Certificate
	if len(opts.Certificate) > 0 {
		if cert, err = parseCertificatePEM(opts.Certificate); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("signing certificate: %w", err)
		}
		if err := cryptoutils.EqualKeys(cert.PublicKey, key.Public().key); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("signing certificate is not for the signing key: %w", ErrInvalidCertificate)
		}
	}
	var desc ocispec.Descriptor
	if format == FormatLegacy {
		desc, err = signLegacy(ctx, dst, subject, key, opts)
	} else {
		desc, err = signBundle(ctx, dst, subject, key, cert, opts)
	}
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("sign %s: %w", subject, err)
	}
	return desc, nil
}

func signBundle(ctx context.Context, dst Destination, subject Subject, key *PrivateKey, cert *x509.Certificate, opts SignOptions) (ocispec.Descriptor, error) {
	data, err := makeBundle(key, cert, subject.Descriptor.Digest)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	layer := content.NewDescriptorFromBytes(BundleMediaType, data)
	if err := pushIfMissing(ctx, dst, layer, data); err != nil {
		return ocispec.Descriptor{}, err
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	return oras.PackManifest(ctx, keepReplacedIndex{dst}, oras.PackManifestVersion1_1, BundleMediaType, oras.PackManifestOptions{
		Subject: &ocispec.Descriptor{
			MediaType: subject.Descriptor.MediaType,
			Digest:    subject.Descriptor.Digest,
			Size:      subject.Descriptor.Size,
		},
		Layers: []ocispec.Descriptor{layer},
		ManifestAnnotations: map[string]string{
			AnnotationBundleContent:       "dsse-envelope",
			AnnotationBundlePredicateType: SignPredicateType,
			ocispec.AnnotationCreated:     now().UTC().Format(time.RFC3339),
		},
	})
}

// keepReplacedIndex pushes to a registry without the referrers API, where
// oras-go indexes a referrer under the "sha256-<hex>" tag and then deletes
// the index it replaced. A registry that refuses deletes (distribution's
// default) fails only that last step, with the signature and the new index
// in place: that is success, as oras and notation take it.
type keepReplacedIndex struct {
	content.Pusher
}

func (k keepReplacedIndex) Push(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	err := k.Pusher.Push(ctx, desc, r)
	if re := (*remote.ReferrersError)(nil); errors.As(err, &re) && re.IsReferrersIndexDelete() {
		return nil
	}
	return err
}

func signLegacy(ctx context.Context, dst Destination, subject Subject, key *PrivateKey, opts SignOptions) (ocispec.Descriptor, error) {
	identity := opts.Identity
	if identity == "" {
		identity = subject.Name
	}
	payload, err := legacyPayload(identity, subject.Descriptor.Digest)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	sig, err := key.sign(payload)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	layer := content.NewDescriptorFromBytes(SimpleSigningMediaType, payload)
	layer.Annotations = map[string]string{AnnotationSignature: base64.StdEncoding.EncodeToString(sig)}
	if len(opts.Certificate) > 0 {
		layer.Annotations[AnnotationCertificate] = string(opts.Certificate)
		if len(opts.CertificateChain) > 0 {
			layer.Annotations[AnnotationChain] = string(opts.CertificateChain)
		}
	}

	tag := LegacySignatureTag(subject.Descriptor.Digest)
	layers, err := existingLegacyLayers(ctx, dst, tag)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if !slices.ContainsFunc(layers, func(l ocispec.Descriptor) bool {
		return l.Digest == layer.Digest && l.Annotations[AnnotationSignature] == layer.Annotations[AnnotationSignature]
	}) {
		layers = append(layers, layer) // a deterministic signature (Ed25519) may be there already
	}

	if err := pushIfMissing(ctx, dst, layer, payload); err != nil {
		return ocispec.Descriptor{}, err
	}
	config, err := legacyConfigFor(layers)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	configDesc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageConfig, config)
	if err := pushIfMissing(ctx, dst, configDesc, config); err != nil {
		return ocispec.Descriptor{}, err
	}
	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    layers,
	})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return oras.TagBytes(ctx, dst, ocispec.MediaTypeImageManifest, manifest, tag)
}

// existingLegacyLayers returns the layers of the ".sig" manifest tagged tag,
// or none when there is none. An unreadable manifest is an error: replacing
// it would drop whatever signatures it holds.
func existingLegacyLayers(ctx context.Context, dst Destination, tag string) ([]ocispec.Descriptor, error) {
	desc, err := dst.Resolve(ctx, tag)
	if errors.Is(err, errdef.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("signature tag %s: %w", tag, err)
	}
	raw, err := fetchLimited(ctx, dst, desc, maxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("existing signature manifest %s: %w", tag, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("existing signature manifest %s is not a manifest, refusing to replace it: %w", tag, err)
	}
	if len(m.Layers) >= MaxSignatures {
		return nil, fmt.Errorf("%s already has %d layers: %w", tag, len(m.Layers), ErrTooManySignatures)
	}
	return slices.Clip(m.Layers), nil
}

// pushIfMissing pushes data as desc unless dst has it already.
func pushIfMissing(ctx context.Context, dst Destination, desc ocispec.Descriptor, data []byte) error {
	exists, err := dst.Exists(ctx, desc)
	if err != nil {
		return fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	if exists {
		return nil
	}
	if err := dst.Push(ctx, desc, bytes.NewReader(data)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		return fmt.Errorf("push blob %s: %w", desc.Digest, err)
	}
	return nil
}
