package artifact

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
)

func TestOpenMissingIsNotFound(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []string{"oci:" + dir + "/none", "oci-archive:" + dir + "/none.tar"} {
		ref, err := ParseReference(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Open(context.Background(), ref, OpenOptions{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("Open(%s) error = %v, want ErrNotFound", s, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("Open without Create wrote %d entries", len(entries))
	}
}

func TestArchiveRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.tar")
	ref, err := ParseReference("oci-archive:" + path + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	w, err := Open(ctx, ref, OpenOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	blob := []byte("hello")
	desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	if err := w.Push(ctx, desc, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	manifest, err := oras.PackManifest(ctx, w, oras.PackManifestVersion1_1, "application/vnd.test", oras.PackManifestOptions{Layers: []ocispec.Descriptor{desc}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Tag(ctx, manifest, ref.Selector()); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	r, err := Open(ctx, ref, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.Resolve(ctx, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != manifest.Digest {
		t.Errorf("resolved %s, want %s", got.Digest, manifest.Digest)
	}
}
