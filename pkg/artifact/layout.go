package artifact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/errdef"
)

// ingestDir is where oras-go's layout store writes a blob before renaming
// it into blobs/.
const ingestDir = "ingest"

// layoutStore is an OCI layout (oras-go's oci.Store) that opens its blobs
// without waiting on a FIFO or device, cleans up after a failed push
// (oras-go leaves the partial file in ingest/), and remembers what it wrote
// so that a failed write can be undone.
type layoutStore struct {
	*oci.Store
	root string
	// index is index.json as it was when the layout was opened; nil when
	// there was none.
	index []byte

	mu sync.Mutex
	// pushed are the blobs written since the layout was opened.
	pushed  []digest.Digest
	written bool
	// pushing counts the pushes under way: ingest/ is removed only when
	// none is, or it would vanish between oras-go creating it and writing
	// a file there.
	pushing int
}

// openLayoutStore opens the OCI layout at root, which must exist (or be
// made by the caller). Before oras-go reads it, it checks the manifests
// and indexes index.json leads to against limits, as oras-go reads them
// whole.
func openLayoutStore(ctx context.Context, root string, limits Limits) (*layoutStore, error) {
	index, err := checkLayout(root, limits)
	if err != nil {
		return nil, err
	}
	store, err := oci.NewWithContext(ctx, root)
	if err != nil {
		if cause := explainLayout(ctx, root); cause != nil {
			err = cause
		}
		return nil, err
	}
	return &layoutStore{Store: store, root: root, index: index}, nil
}

func (s *layoutStore) blobPath(d digest.Digest) string {
	return filepath.Join(s.root, ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

// Fetch opens the blob desc describes, refusing anything but a regular
// file without waiting on it.
func (s *layoutStore) Fetch(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", desc.Digest, errdef.ErrInvalidDigest)
	}
	f, _, err := openRegular(s.blobPath(desc.Digest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %s: %w", desc.Digest, desc.MediaType, errdef.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	return f, nil
}

// Push writes a blob; after a failure it removes what oras-go left of it
// in ingest/.
func (s *layoutStore) Push(ctx context.Context, expected ocispec.Descriptor, r io.Reader) error {
	s.mu.Lock()
	s.written = true
	s.pushing++
	s.mu.Unlock()
	err := s.Store.Push(ctx, expected, r)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pushing--
	if err != nil {
		if !errors.Is(err, errdef.ErrAlreadyExists) {
			s.removeIngest(expected.Digest)
		}
		return err
	}
	s.pushed = append(s.pushed, expected.Digest)
	return nil
}

func (s *layoutStore) Tag(ctx context.Context, desc ocispec.Descriptor, reference string) error {
	s.mu.Lock()
	s.written = true
	s.mu.Unlock()
	return s.Store.Tag(ctx, desc, reference)
}

// wasWritten reports whether anything was pushed or tagged.
func (s *layoutStore) wasWritten() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written
}

// removeIngest removes the partial files of blob d from ingest/ (named
// "<hex>_<random>" by oras-go) and ingest/ itself when it is left empty
// and no other push is under way. s.mu is held.
func (s *layoutStore) removeIngest(d digest.Digest) {
	matches, _ := filepath.Glob(filepath.Join(s.root, ingestDir, d.Encoded()+"_*"))
	for _, m := range matches {
		os.Remove(m)
	}
	if s.pushing == 0 {
		s.removeEmptyIngest()
	}
}

// tidy removes ingest/ if it is empty and no push is under way: a layout
// has no such directory.
func (s *layoutStore) tidy() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pushing == 0 {
		s.removeEmptyIngest()
	}
}

func (s *layoutStore) removeEmptyIngest() {
	os.Remove(filepath.Join(s.root, ingestDir)) // fails, as it should, unless empty
}

// undo removes the blobs written since the layout was opened and puts
// index.json back as it was.
func (s *layoutStore) undo() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.pushed {
		os.Remove(s.blobPath(d))
	}
	s.pushed = nil
	path := filepath.Join(s.root, ocispec.ImageIndexFile)
	if s.index == nil {
		os.Remove(path)
	} else {
		writeFileAtomic(path, s.index)
	}
	if s.pushing == 0 {
		s.removeEmptyIngest()
	}
}

// writeFileAtomic replaces the file at path with data through a temporary
// file renamed into place.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// checkLayout reads the layout at root the way oras-go's store will on
// opening it (index.json, then every manifest and index it leads to, each
// read whole), but bounded: index.json and each manifest within
// limits.ManifestSize, at most limits.Blobs of them, each a regular file
// opened without waiting. It returns index.json's content, nil if there is
// none. Problems oras-go reports itself (a missing blob, a digest that does
// not match) are left to it.
func checkLayout(root string, limits Limits) ([]byte, error) {
	limits = limits.WithDefaults()
	for _, name := range []string{ocispec.ImageLayoutFile, ocispec.ImageIndexFile} {
		f, _, err := openRegular(filepath.Join(root, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		f.Close()
	}
	index, err := readBounded(filepath.Join(root, ocispec.ImageIndexFile), limits.ManifestSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ocispec.ImageIndexFile, err)
	}
	var top struct {
		Manifests []ocispec.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(index, &top); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", ocispec.ImageIndexFile, ErrUnsupported, err)
	}
	seen := map[digest.Digest]bool{}
	queue := top.Manifests
	for len(queue) > 0 {
		desc := queue[0]
		queue = queue[1:]
		if seen[desc.Digest] || !successorsRead(desc.MediaType) || desc.Digest.Validate() != nil {
			continue
		}
		seen[desc.Digest] = true
		if len(seen) > limits.Blobs {
			return nil, &LimitError{What: "layout " + root, Limit: "Blobs", Value: int64(len(seen)), Max: int64(limits.Blobs)}
		}
		what := nodeName(desc)
		if err := checkSize(what, "ManifestSize", desc.Size, limits.ManifestSize); err != nil {
			return nil, err
		}
		data, err := readBounded(filepath.Join(root, ocispec.ImageBlobsDir, desc.Digest.Algorithm().String(), desc.Digest.Encoded()), limits.ManifestSize)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		var doc struct {
			Config    *ocispec.Descriptor  `json:"config"`
			Layers    []ocispec.Descriptor `json:"layers"`
			Blobs     []ocispec.Descriptor `json:"blobs"`
			Manifests []ocispec.Descriptor `json:"manifests"`
			Subject   *ocispec.Descriptor  `json:"subject"`
		}
		if json.Unmarshal(data, &doc) != nil {
			continue // oras-go says which
		}
		if doc.Config != nil {
			queue = append(queue, *doc.Config)
		}
		if doc.Subject != nil {
			queue = append(queue, *doc.Subject)
		}
		queue = append(queue, doc.Layers...)
		queue = append(queue, doc.Blobs...)
		queue = append(queue, doc.Manifests...)
	}
	return index, nil
}

// successorsRead reports whether oras-go reads a node of mediaType whole to
// find what it references.
func successorsRead(mediaType string) bool {
	return isManifestType(mediaType) || mediaType == "application/vnd.oci.artifact.manifest.v1+json"
}

// readBounded reads the regular file at path, refusing one larger than max.
func readBounded(path string, max int64) ([]byte, error) {
	f, info, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if info.Size() > max {
		return nil, &LimitError{What: filepath.Base(path), Limit: "ManifestSize", Value: info.Size(), Max: max}
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, &LimitError{What: filepath.Base(path), Limit: "ManifestSize", Value: int64(len(data)), Max: max}
	}
	return data, nil
}
