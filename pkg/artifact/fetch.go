package artifact

import (
	"context"
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// Bytecode is the content of an artifact for one platform: the description
// of its objects and the objects themselves, each verified against its
// digest.
type Bytecode struct {
	// Root is the descriptor Fetch was given: the index or manifest that
	// signatures cover.
	Root ocispec.Descriptor
	// Manifest is the manifest read: Root itself, or Root's entry for the
	// platform.
	Manifest
	// Objects are the ELF object files, in layer order.
	Objects []ObjectFile
}

// Fetch reads the artifact desc describes from store, for platform (the
// zero value means HostPlatform): from an index it takes the entry for that
// platform, or else the arch-neutral entry of its byte order. It reads bpfd
// artifacts and bpfman images, verifies every blob against its digest, checks
// that the config describes exactly the layers and agrees with what the
// objects define (a bpfman image's labels likewise), and that the objects'
// byte order is the platform's.
//
// Errors wrap ErrNotFound (no such manifest or blob, no entry for the
// platform), ErrDigestMismatch (tampered content), ErrUnsupported (not a
// bytecode artifact, a config or labels that disagree with the objects, or
// of the other byte order), ErrInvalidObject (a bpfman image whose
// object is not valid) and ErrUnreachable.
func Fetch(ctx context.Context, store content.Fetcher, desc ocispec.Descriptor, platform ocispec.Platform) (*Bytecode, error) {
	if platform.OS == "" && platform.Architecture == "" {
		platform = HostPlatform()
	}
	order, ok := PlatformByteOrder(platform)
	if !ok {
		return nil, fmt.Errorf("platform %s: unknown architecture %q", FormatPlatform(platform), platform.Architecture)
	}
	chosen := desc
	if isIndex(desc.MediaType) {
		index, err := readIndex(ctx, store, desc)
		if err != nil {
			return nil, err
		}
		entry, ok := selectPlatform(index.Manifests, platform)
		if !ok {
			return nil, fmt.Errorf("index %s: no manifest for platform %s (has %s): %w", desc.Digest, FormatPlatform(platform), platformList(index.Manifests), ErrNotFound)
		}
		chosen = entry
	}
	mc, err := readManifest(ctx, store, chosen, true)
	if err != nil {
		return nil, err
	}
	mc.Platform = chosen.Platform
	if mc.Config.ByteOrder != order {
		return nil, fmt.Errorf("manifest %s: %w: %s-endian objects, but %s is %s-endian", chosen.Digest, ErrUnsupported, mc.Config.ByteOrder, FormatPlatform(platform), order)
	}
	return &Bytecode{Root: desc, Manifest: mc.Manifest, Objects: mc.objects}, nil
}

func isIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == mediaTypeDockerManifestList
}

// readIndex reads an image index (or Docker manifest list).
func readIndex(ctx context.Context, store content.Fetcher, desc ocispec.Descriptor) (*ocispec.Index, error) {
	data, err := fetchBlob(ctx, store, desc, maxMetadataSize)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", desc.Digest, err)
	}
	var index ocispec.Index
	if err := json.Unmarshal(data, &index); err != nil {
		return nil, fmt.Errorf("index %s: %w: %v", desc.Digest, ErrUnsupported, err)
	}
	if index.SchemaVersion != manifestSchemaVersion {
		return nil, fmt.Errorf("index %s: %w: schemaVersion %d, not %d", desc.Digest, ErrUnsupported, index.SchemaVersion, manifestSchemaVersion)
	}
	if index.ArtifactType != "" && index.ArtifactType != ArtifactType {
		return nil, classified{fmt.Errorf("index %s: %w: artifactType %q is not %s", desc.Digest, ErrUnsupported, index.ArtifactType, ArtifactType), ErrNotBytecode}
	}
	return &index, nil
}
