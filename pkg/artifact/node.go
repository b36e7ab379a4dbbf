package artifact

import (
	"context"
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// Node is a manifest or an index: fetched within Limits.ManifestSize,
// checked against its descriptor's digest and size, and parsed. What it is
// comes from its content, never from the media type its descriptor claimed:
// a registry or layout that labels manifest bytes as an index (or the
// reverse) is not believed.
type Node struct {
	// Descriptor is the descriptor the node was fetched with, with the
	// MediaType and ArtifactType of the content (an index's or manifest's
	// artifactType, else a manifest's config media type, as OCI 1.1
	// defines a manifest's artifact type).
	Descriptor ocispec.Descriptor
	// Data is the content, byte for byte.
	Data []byte
	// Subject is what the node refers to, for a referrer; nil otherwise.
	Subject *ocispec.Descriptor
	// Config is a manifest's config; nil for an index.
	Config *ocispec.Descriptor
	// Layers are a manifest's layers.
	Layers []ocispec.Descriptor
	// Manifests are an index's entries.
	Manifests []ocispec.Descriptor
	// Annotations are the node's own annotations.
	Annotations map[string]string
}

// IsIndex reports whether the node is an index (or Docker manifest list).
func (n *Node) IsIndex() bool { return isIndex(n.Descriptor.MediaType) }

// Successors returns what the node references, subject excepted: an index's
// manifests, or a manifest's config and layers.
func (n *Node) Successors() []ocispec.Descriptor {
	if n.IsIndex() {
		return n.Manifests
	}
	out := make([]ocispec.Descriptor, 0, 1+len(n.Layers))
	if n.Config != nil {
		out = append(out, *n.Config)
	}
	return append(out, n.Layers...)
}

// FetchNode fetches the manifest or index desc describes from src, within
// limits.ManifestSize, verifies it against desc's digest and size, and
// parses it. Errors name the node and wrap ErrNotFound, ErrDigestMismatch,
// ErrUnsupported (not a manifest or index, schemaVersion not 2, a media type
// its structure contradicts), ErrLimit or ErrUnreachable.
func FetchNode(ctx context.Context, src content.Fetcher, desc ocispec.Descriptor, limits Limits) (*Node, error) {
	n, err := fetchNode(ctx, src, desc, limits.WithDefaults().ManifestSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", nodeName(desc), err)
	}
	return n, nil
}

// fetchNode is FetchNode with errors that do not name the node.
func fetchNode(ctx context.Context, src content.Fetcher, desc ocispec.Descriptor, limit int64) (*Node, error) {
	if desc.MediaType != "" && !isManifestType(desc.MediaType) {
		return nil, fmt.Errorf("%w: media type %q is not an image manifest or index", ErrUnsupported, desc.MediaType)
	}
	if desc.Size > limit {
		return nil, &LimitError{Limit: "ManifestSize", Value: desc.Size, Max: limit}
	}
	data, err := fetchBlob(ctx, src, desc, limit)
	if err != nil {
		return nil, err
	}
	return parseNode(desc, data)
}

// parseNode parses the manifest or index data, fetched with desc.
func parseNode(desc ocispec.Descriptor, data []byte) (*Node, error) {
	var doc struct {
		SchemaVersion int                  `json:"schemaVersion"`
		MediaType     string               `json:"mediaType"`
		ArtifactType  string               `json:"artifactType"`
		Config        *ocispec.Descriptor  `json:"config"`
		Layers        []ocispec.Descriptor `json:"layers"`
		Manifests     []ocispec.Descriptor `json:"manifests"`
		Subject       *ocispec.Descriptor  `json:"subject"`
		Annotations   map[string]string    `json:"annotations"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: not a manifest or index: %v", ErrUnsupported, err)
	}
	if doc.SchemaVersion != manifestSchemaVersion {
		return nil, fmt.Errorf("%w: schemaVersion %d, not %d", ErrUnsupported, doc.SchemaVersion, manifestSchemaVersion)
	}
	isManifest := doc.Config != nil || doc.Layers != nil
	isIdx := doc.Manifests != nil
	mediaType := doc.MediaType
	switch mediaType {
	case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest:
		if isIdx || doc.Config == nil {
			return nil, fmt.Errorf("%w: media type %q, but the content is not a manifest", ErrUnsupported, mediaType)
		}
	case ocispec.MediaTypeImageIndex, mediaTypeDockerManifestList:
		if isManifest || !isIdx {
			return nil, fmt.Errorf("%w: media type %q, but the content is not an index", ErrUnsupported, mediaType)
		}
	case "":
		switch {
		case isIdx && !isManifest:
			mediaType = ocispec.MediaTypeImageIndex
		case doc.Config != nil && !isIdx:
			mediaType = ocispec.MediaTypeImageManifest
		default:
			return nil, fmt.Errorf("%w: neither a manifest nor an index", ErrUnsupported)
		}
	default:
		return nil, fmt.Errorf("%w: media type %q is not a manifest or index", ErrUnsupported, mediaType)
	}
	n := &Node{Data: data, Subject: doc.Subject, Annotations: doc.Annotations}
	n.Descriptor = ocispec.Descriptor{
		MediaType:    mediaType,
		Digest:       desc.Digest,
		Size:         desc.Size,
		ArtifactType: doc.ArtifactType,
		Annotations:  desc.Annotations,
		Platform:     desc.Platform,
	}
	if isIndex(mediaType) {
		n.Manifests = doc.Manifests
	} else {
		n.Config, n.Layers = doc.Config, doc.Layers
		if n.Descriptor.ArtifactType == "" {
			n.Descriptor.ArtifactType = doc.Config.MediaType
		}
	}
	for _, d := range n.Successors() {
		if err := d.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %s digest %q: %v", ErrUnsupported, blobKind(d), d.Digest, err)
		}
		if d.Size < 0 {
			return nil, fmt.Errorf("%w: %s %s: negative size %d", ErrUnsupported, blobKind(d), d.Digest, d.Size)
		}
	}
	if n.Subject != nil {
		if err := n.Subject.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("%w: subject %q: %v", ErrUnsupported, n.Subject.Digest, err)
		}
	}
	return n, nil
}

// nodeName names a manifest or index for an error message, by the kind its
// descriptor claims.
func nodeName(desc ocispec.Descriptor) string {
	if isIndex(desc.MediaType) {
		return "index " + desc.Digest.String()
	}
	return "manifest " + desc.Digest.String()
}

// isManifestType reports whether mediaType is one of a manifest or an index.
func isManifestType(mediaType string) bool {
	switch mediaType {
	case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest, ocispec.MediaTypeImageIndex, mediaTypeDockerManifestList:
		return true
	}
	return false
}
