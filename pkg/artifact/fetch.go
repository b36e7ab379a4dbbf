package artifact

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// Bytecode is the content of an artifact for one platform: the description
// of its objects and the objects themselves, each verified against its
// digest.
type Bytecode struct {
	// Root is the descriptor Fetch was given, the index or manifest that
	// signatures cover, with the media type of its content.
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
	root, mc, err := fetchManifest(ctx, store, desc, platform, true)
	if err != nil {
		return nil, err
	}
	return &Bytecode{Root: root, Manifest: mc.Manifest, Objects: mc.objects}, nil
}

// ObjectWriter receives one object of an artifact, streamed (FetchObjects).
// r yields the object's bytes checked against its digest and size as they
// pass: content that does not match is an error from r.Read instead of
// io.EOF. The writer must read r to io.EOF, and must not keep what it wrote
// when r (or it) fails. It returns what it wrote as an io.ReaderAt (a file
// it keeps open, say), valid until FetchObjects returns, from which
// FetchObjects checks the config against the objects.
type ObjectWriter func(name string, r io.Reader) (io.ReaderAt, error)

// FetchObjects is Fetch without holding the objects in memory: it reads and
// checks the manifest for platform as Fetch does, then hands each object,
// in layer order, to write as it streams from store, and checks the config
// against the objects written, as Fetch does (ErrConfigMismatch). The
// Bytecode it returns has no Objects. A bpfman image's object, which comes out of a
// compressed tar, is extracted in memory within MaxObjectSize, as Fetch
// does. Errors are Fetch's, and those of write.
func FetchObjects(ctx context.Context, store content.Fetcher, desc ocispec.Descriptor, platform ocispec.Platform, write ObjectWriter) (*Bytecode, error) {
	if platform.OS == "" && platform.Architecture == "" {
		platform = HostPlatform()
	}
	root, mc, err := fetchManifest(ctx, store, desc, platform, false)
	if err != nil {
		return nil, err
	}
	bc := &Bytecode{Root: root, Manifest: mc.Manifest}
	if mc.Format == FormatBpfman {
		for _, o := range mc.objects {
			if _, err := write(o.Name, bytes.NewReader(o.Data)); err != nil {
				return nil, err
			}
		}
		return bc, nil
	}
	written := make([]objectSource, 0, len(mc.layers))
	for _, l := range mc.layers {
		name := l.Annotations[ocispec.AnnotationTitle]
		at, err := streamObject(ctx, store, l, name, write)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: layer %s (%s): %w", mc.Descriptor.Digest, l.Digest, name, err)
		}
		written = append(written, objectSource{ObjectFile: ObjectFile{Name: name}, at: at, size: l.Size, digest: l.Digest})
	}
	if err := checkConfig(&mc.Config, written); err != nil {
		return nil, fmt.Errorf("manifest %s: config %s: %w", mc.Descriptor.Digest, mc.configDesc.Digest, err)
	}
	if err := checkByteOrder(mc, platform); err != nil {
		return nil, err
	}
	return bc, nil
}

// streamObject hands layer l to write through a verifyingReader, checks
// that write read it to its end, and returns what write returned.
func streamObject(ctx context.Context, store content.Fetcher, l ocispec.Descriptor, name string, write ObjectWriter) (io.ReaderAt, error) {
	rc, err := store.Fetch(ctx, l)
	if err != nil {
		if err = classify(err); errors.Is(err, ErrNotFound) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	defer rc.Close()
	vr := &verifyingReader{r: rc, desc: l, verifier: l.Digest.Verifier()}
	at, err := write(name, vr)
	if vr.err != nil {
		return nil, vr.err
	}
	if err != nil {
		return nil, err
	}
	if !vr.done {
		return nil, fmt.Errorf("%s: the writer stopped before the end of the object", name)
	}
	if at == nil {
		return nil, fmt.Errorf("%s: the writer returned nothing to read the object back from", name)
	}
	return at, nil
}

// fetchManifest reads the root desc describes and the manifest for
// platform, checked as Fetch checks them, with the objects if withObjects
// (a bpfman image's always). It returns the root's descriptor with the
// media type of its content.
func fetchManifest(ctx context.Context, store content.Fetcher, desc ocispec.Descriptor, platform ocispec.Platform, withObjects bool) (ocispec.Descriptor, *manifestContent, error) {
	if platform.OS == "" && platform.Architecture == "" {
		platform = HostPlatform()
	}
	if _, ok := PlatformByteOrder(platform); !ok {
		return desc, nil, fmt.Errorf("platform %s: unknown architecture %q", FormatPlatform(platform), platform.Architecture)
	}
	rootNode, err := fetchNode(ctx, store, desc, maxMetadataSize)
	if err != nil {
		return desc, nil, fmt.Errorf("%s: %w", nodeName(desc), err)
	}
	desc = rootNode.Descriptor // the type the content has, not the one claimed
	chosen := rootNode
	if rootNode.IsIndex() {
		index, err := readIndexNode(rootNode)
		if err != nil {
			return desc, nil, err
		}
		entry, ok := selectPlatform(index.Manifests, platform)
		if !ok {
			return desc, nil, fmt.Errorf("index %s: no manifest for platform %s (has %s): %w", desc.Digest, FormatPlatform(platform), platformList(index.Manifests), ErrNotFound)
		}
		if chosen, err = fetchNode(ctx, store, entry, maxMetadataSize); err != nil {
			return desc, nil, fmt.Errorf("manifest %s: %w", entry.Digest, err)
		}
	}
	mc, err := readManifestNode(ctx, store, chosen, withObjects)
	if err != nil {
		return desc, nil, err
	}
	mc.Platform = chosen.Descriptor.Platform
	// The config's byte order is checked against the objects with them:
	// here unless they are still to be streamed (FetchObjects checks it
	// after them, so that a config that lies is named as such).
	if withObjects || mc.Format == FormatBpfman {
		if err := checkByteOrder(mc, platform); err != nil {
			return desc, nil, err
		}
	}
	return desc, mc, nil
}

// checkByteOrder refuses objects of the other byte order than platform's.
func checkByteOrder(mc *manifestContent, platform ocispec.Platform) error {
	order, _ := PlatformByteOrder(platform)
	if mc.Config.ByteOrder != order {
		return fmt.Errorf("manifest %s: %w: %s-endian objects, but %s is %s-endian", mc.Descriptor.Digest, ErrUnsupported, mc.Config.ByteOrder, FormatPlatform(platform), order)
	}
	return nil
}

func isIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == mediaTypeDockerManifestList
}

// readIndex reads an image index (or Docker manifest list).
func readIndex(ctx context.Context, store content.Fetcher, desc ocispec.Descriptor) (*ocispec.Index, error) {
	n, err := fetchNode(ctx, store, desc, maxMetadataSize)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", desc.Digest, err)
	}
	return readIndexNode(n)
}

// readIndexNode is readIndex for an index already fetched.
func readIndexNode(n *Node) (*ocispec.Index, error) {
	desc := n.Descriptor
	if !n.IsIndex() {
		return nil, fmt.Errorf("index %s: %w: media type %q is not an index", desc.Digest, ErrUnsupported, desc.MediaType)
	}
	var index ocispec.Index
	if err := json.Unmarshal(n.Data, &index); err != nil {
		return nil, fmt.Errorf("index %s: %w: %v", desc.Digest, ErrUnsupported, err)
	}
	if index.ArtifactType != "" && index.ArtifactType != ArtifactType {
		return nil, classified{fmt.Errorf("index %s: %w: artifactType %q is not %s", desc.Digest, ErrUnsupported, index.ArtifactType, ArtifactType), ErrNotBytecode}
	}
	return &index, nil
}
