package artifact

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
)

// BuildOptions configures Build and BuildIndex. The zero value builds an
// artifact whose only annotation is a creation time at the Unix epoch, so
// that the same objects always give the same digest.
type BuildOptions struct {
	// Created is written to org.opencontainers.image.created (RFC 3339,
	// UTC). The zero value means the Unix epoch; callers pass
	// SOURCE_DATE_EPOCH here.
	Created time.Time
	// Annotations are added to the manifests (and the index), and win over
	// the created time above. org.opencontainers.image.source and .revision
	// are also recorded in Config.Build.
	Annotations map[string]string
	// Tool names the builder and its version in Config.Build.Tool.
	Tool string
}

// PlatformObjects are the objects built for one platform.
type PlatformObjects struct {
	Platform ocispec.Platform
	Objects  []ObjectFile
}

// Build describes the objects (see Describe) and pushes to dst their layers,
// the config and an OCI 1.1 image manifest with ArtifactType. Layers are
// sorted by file name. It returns the manifest's descriptor. Build pushes
// nothing when the objects are invalid; dst is typically a memory store that
// the caller copies to the destination once Build succeeded.
func Build(ctx context.Context, dst content.Pusher, objects []ObjectFile, opts BuildOptions) (ocispec.Descriptor, error) {
	cfg, err := Describe(objects)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return pushManifest(ctx, dst, cfg, objects, opts)
}

// BuildIndex builds one manifest per platform, as Build does, and an OCI
// image index over them with ArtifactType, sorted by platform. Each
// platform's objects must have its architecture's byte order; the
// architectures ArchNeutralLittle and ArchNeutralBig mark arch-neutral
// objects. It returns the index's descriptor.
func BuildIndex(ctx context.Context, dst content.Pusher, platforms []PlatformObjects, opts BuildOptions) (ocispec.Descriptor, error) {
	if len(platforms) == 0 {
		return ocispec.Descriptor{}, fmt.Errorf("no platforms: %w", ErrInvalidObject)
	}
	type built struct {
		platform ocispec.Platform
		cfg      *Config
		objects  []ObjectFile
	}
	var all []built
	seen := map[string]bool{}
	// Describe every platform before pushing anything.
	for _, p := range platforms {
		name := FormatPlatform(p.Platform)
		if seen[name] {
			return ocispec.Descriptor{}, fmt.Errorf("platform %s: given twice", name)
		}
		seen[name] = true
		want, ok := PlatformByteOrder(p.Platform)
		if !ok {
			return ocispec.Descriptor{}, fmt.Errorf("platform %s: unknown architecture %q", name, p.Platform.Architecture)
		}
		cfg, err := Describe(p.Objects)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("platform %s: %w", name, err)
		}
		if cfg.ByteOrder != want {
			return ocispec.Descriptor{}, fmt.Errorf("platform %s: %s: %w: %s-endian object for a %s-endian platform", name, p.Objects[0].label(), ErrInvalidObject, cfg.ByteOrder, want)
		}
		all = append(all, built{p.Platform, cfg, p.Objects})
	}
	slices.SortFunc(all, func(a, b built) int {
		return strings.Compare(FormatPlatform(a.platform), FormatPlatform(b.platform))
	})

	index := ocispec.Index{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageIndex,
		ArtifactType: ArtifactType,
		Manifests:    []ocispec.Descriptor{},
		Annotations:  annotations(opts),
	}
	for _, b := range all {
		desc, err := pushManifest(ctx, dst, b.cfg, b.objects, opts)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("platform %s: %w", FormatPlatform(b.platform), err)
		}
		desc.Platform = &b.platform
		desc.Annotations = nil
		index.Manifests = append(index.Manifests, desc)
	}
	return pushJSON(ctx, dst, ocispec.MediaTypeImageIndex, ArtifactType, index)
}

// pushManifest pushes the layers, the config completed with opts, and the
// manifest.
func pushManifest(ctx context.Context, dst content.Pusher, cfg *Config, objects []ObjectFile, opts BuildOptions) (ocispec.Descriptor, error) {
	ann := annotations(opts)
	cfg.Build.Tool = opts.Tool
	cfg.Build.Source = ann[ocispec.AnnotationSource]
	cfg.Build.Revision = ann[ocispec.AnnotationRevision]

	sorted := slices.Clone(objects)
	slices.SortFunc(sorted, func(a, b ObjectFile) int { return strings.Compare(a.Name, b.Name) })
	layers := make([]ocispec.Descriptor, 0, len(sorted))
	for _, o := range sorted {
		desc := ocispec.Descriptor{
			MediaType:   MediaTypeObject,
			Digest:      digest.FromBytes(o.Data),
			Size:        int64(len(o.Data)),
			Annotations: map[string]string{ocispec.AnnotationTitle: o.Name},
		}
		if err := push(ctx, dst, desc, o.Data); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("layer %s: %w", o.Name, err)
		}
		layers = append(layers, desc)
	}
	cfgDesc, err := pushJSON(ctx, dst, MediaTypeConfig, "", cfg)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("config: %w", err)
	}
	manifest := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ArtifactType,
		Config:       cfgDesc,
		Layers:       layers,
		Annotations:  ann,
	}
	return pushJSON(ctx, dst, ocispec.MediaTypeImageManifest, ArtifactType, manifest)
}

// annotations returns the manifest annotations opts asks for.
func annotations(opts BuildOptions) map[string]string {
	created := opts.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	ann := map[string]string{ocispec.AnnotationCreated: created.UTC().Format(time.RFC3339)}
	maps.Copy(ann, opts.Annotations)
	return ann
}

// pushJSON marshals v (deterministically: struct fields in order, map keys
// sorted) and pushes it with the media type; artifactType is recorded in the
// returned descriptor for manifests and indexes.
func pushJSON(ctx context.Context, dst content.Pusher, mediaType, artifactType string, v any) (ocispec.Descriptor, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := ocispec.Descriptor{MediaType: mediaType, ArtifactType: artifactType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := push(ctx, dst, desc, data); err != nil {
		return ocispec.Descriptor{}, err
	}
	return desc, nil
}

func push(ctx context.Context, dst content.Pusher, desc ocispec.Descriptor, data []byte) error {
	if err := dst.Push(ctx, desc, bytes.NewReader(data)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		return classify(err)
	}
	return nil
}
