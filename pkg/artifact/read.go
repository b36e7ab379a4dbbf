package artifact

import (
	"context"
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// maxMetadataSize bounds manifests, indexes and configs read.
const maxMetadataSize = 4 << 20

// manifestSchemaVersion is the schemaVersion of every OCI image manifest and
// index, and of the Docker manifests and lists this package reads.
const manifestSchemaVersion = 2

// Manifest describes one manifest of an artifact: the whole artifact, or the
// entry of an index for one platform.
type Manifest struct {
	Descriptor ocispec.Descriptor
	// Platform is the index entry's platform; nil for a manifest that is
	// not part of an index.
	Platform *ocispec.Platform
	// Format says which kind of image the manifest is.
	Format Format
	// Config is the manifest's config blob for FormatBpfd; for FormatBpfman
	// it is extracted from the object in the image.
	Config Config
	// Annotations are the manifest's annotations.
	Annotations map[string]string
	// Labels are the io.ebpf.* labels of a bpfman image's config; nil for
	// FormatBpfd.
	Labels map[string]string
}

// manifestContent is a manifest read and checked, with its layers' objects
// when they were fetched.
type manifestContent struct {
	Manifest
	configDesc ocispec.Descriptor
	layers     []ocispec.Descriptor
	objects    []ObjectFile
}

// readManifest reads the manifest desc describes and its config, and checks
// that they form a bytecode artifact of a format this package knows. With
// withObjects it also fetches and verifies the object layers and checks the
// config against them; a bpfman image's layer is always fetched, as its
// metadata comes from the object, and its labels are checked against it.
func readManifest(ctx context.Context, store content.Fetcher, desc ocispec.Descriptor, withObjects bool) (*manifestContent, error) {
	n, err := fetchNode(ctx, store, desc, maxMetadataSize)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	return readManifestNode(ctx, store, n, withObjects)
}

// readManifestNode is readManifest for a manifest already fetched.
func readManifestNode(ctx context.Context, store content.Fetcher, n *Node, withObjects bool) (*manifestContent, error) {
	desc := n.Descriptor
	if n.IsIndex() {
		return nil, fmt.Errorf("manifest %s: %w: media type %q is not an image manifest", desc.Digest, ErrUnsupported, desc.MediaType)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(n.Data, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w: %v", desc.Digest, ErrUnsupported, err)
	}
	mc := &manifestContent{
		Manifest:   Manifest{Descriptor: desc, Annotations: m.Annotations},
		configDesc: m.Config,
		layers:     m.Layers,
	}
	var err error
	switch {
	case m.Config.MediaType == MediaTypeConfig && (m.ArtifactType == "" || m.ArtifactType == ArtifactType):
		err = mc.readBpfd(ctx, store, m, withObjects)
	case m.Config.MediaType == ocispec.MediaTypeImageConfig || m.Config.MediaType == mediaTypeDockerConfig:
		err = mc.readBpfman(ctx, store, m)
	default:
		artifactType := m.ArtifactType
		if artifactType == "" {
			artifactType = m.Config.MediaType
		}
		err = classified{fmt.Errorf("%w: artifactType %q is not %s", ErrUnsupported, artifactType, ArtifactType), ErrNotBytecode}
	}
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	return mc, nil
}

// readBpfd reads the config of a bpfd manifest and checks it against the
// layers: one layer per object, same names, digests and sizes.
func (mc *manifestContent) readBpfd(ctx context.Context, store content.Fetcher, m ocispec.Manifest, withObjects bool) error {
	mc.Format = FormatBpfd
	data, err := fetchBlob(ctx, store, m.Config, maxMetadataSize)
	if err != nil {
		return fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if err := json.Unmarshal(data, &mc.Config); err != nil {
		return fmt.Errorf("config %s: %w: %v", m.Config.Digest, ErrUnsupported, err)
	}
	if v := mc.Config.SchemaVersion; v != ConfigSchemaVersion {
		return fmt.Errorf("config %s: %w: schemaVersion %d, this reader knows %d", m.Config.Digest, ErrUnsupported, v, ConfigSchemaVersion)
	}
	if len(m.Layers) == 0 {
		return fmt.Errorf("%w: no layers", ErrUnsupported)
	}
	if len(m.Layers) != len(mc.Config.Objects) {
		return fmt.Errorf("%w: %d layers but the config describes %d objects", ErrUnsupported, len(m.Layers), len(mc.Config.Objects))
	}
	described := map[string]Object{}
	for _, o := range mc.Config.Objects {
		described[o.Name] = o
	}
	seen := map[string]bool{}
	for i, l := range m.Layers {
		name := l.Annotations[ocispec.AnnotationTitle]
		switch {
		case l.MediaType != MediaTypeObject:
			return fmt.Errorf("layer %d (%s): %w: media type %q is not %s", i, l.Digest, ErrUnsupported, l.MediaType, MediaTypeObject)
		case validFileName(name) != nil:
			return fmt.Errorf("layer %d (%s): %w: title annotation: %v", i, l.Digest, ErrUnsupported, validFileName(name))
		case seen[name]:
			return fmt.Errorf("layer %d (%s): %w: a second layer titled %q", i, l.Digest, ErrUnsupported, name)
		}
		seen[name] = true
		o, ok := described[name]
		if !ok || o.Digest != l.Digest || o.Size != l.Size {
			return fmt.Errorf("layer %d (%s): %w: the config does not describe this object", i, name, ErrUnsupported)
		}
		if l.Size > MaxObjectSize {
			return fmt.Errorf("layer %d (%s): %w: %d bytes, more than the %d allowed", i, name, ErrUnsupported, l.Size, MaxObjectSize)
		}
	}
	if !withObjects {
		return nil
	}
	for _, l := range m.Layers {
		name := l.Annotations[ocispec.AnnotationTitle]
		data, err := fetchBlob(ctx, store, l, MaxObjectSize)
		if err != nil {
			return fmt.Errorf("layer %s (%s): %w", l.Digest, name, err)
		}
		mc.objects = append(mc.objects, ObjectFile{Name: name, Data: data})
	}
	sources := make([]objectSource, len(mc.objects))
	for i, o := range mc.objects {
		sources[i] = o.source()
	}
	if err := checkConfig(&mc.Config, sources); err != nil {
		return fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	return nil
}
