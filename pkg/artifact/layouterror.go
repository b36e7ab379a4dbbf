package artifact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/errdef"
)

// explainLayout says which blob of the OCI layout at path kept oras-go from
// opening it. Opening a layout, oras-go reads every manifest and index that
// index.json lists, and the manifests those list, and fails with "invalid OCI
// Image Index" whichever one is corrupt; explainLayout reads them the same
// way and names the first that does not match its descriptor or does not
// parse. It returns nil when it finds nothing wrong.
func explainLayout(ctx context.Context, path string) error {
	data, err := os.ReadFile(filepath.Join(path, ocispec.ImageIndexFile))
	if err != nil {
		return nil // oras-go's own error says it
	}
	var index ocispec.Index
	if err := json.Unmarshal(data, &index); err != nil {
		return fmt.Errorf("%s: %w: %v", ocispec.ImageIndexFile, ErrUnsupported, err)
	}
	blobs, err := oci.NewStorage(path)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var walk func(ocispec.Descriptor) error
	walk = func(desc ocispec.Descriptor) error {
		if seen[desc.Digest.String()] {
			return nil
		}
		seen[desc.Digest.String()] = true
		children, err := content.Successors(ctx, blobs, desc)
		switch {
		case errors.Is(err, errdef.ErrNotFound):
			return nil // oras-go skips missing blobs too
		case err != nil:
			kind := "manifest"
			if isIndex(desc.MediaType) {
				kind = "index"
			}
			if c := classify(err); c != err && !errors.Is(c, ErrUnsupported) {
				return fmt.Errorf("%s %s: %w", kind, desc.Digest, c)
			}
			return fmt.Errorf("%s %s: %w: %v", kind, desc.Digest, ErrUnsupported, err)
		}
		for _, c := range children {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	for _, desc := range index.Manifests {
		if err := walk(desc); err != nil {
			return err
		}
	}
	return nil
}
