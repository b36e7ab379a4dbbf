package artifact

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"

	"github.com/bpfd-dev/bpfd/internal/testing/badinput"
)

// The fuzz targets of this package take their seeds from testdata/bad and
// the example objects; `make fuzz` runs each for FUZZTIME.

// corpus returns testdata/bad.
func corpus(tb testing.TB) *badinput.Corpus {
	tb.Helper()
	c, err := badinput.Locate()
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// FuzzDescribe feeds one object to the metadata extractor: it must return a
// Config or an ErrInvalidObject, never panic.
func FuzzDescribe(f *testing.F) {
	c := corpus(f)
	table, err := c.Table("elf")
	if err != nil {
		f.Fatal(err)
	}
	examples, err := filepath.Glob(filepath.Join(c.Bytecode, "*.bpf.o"))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range table.Entries {
		examples = append(examples, e.FilePaths()...)
	}
	for _, path := range examples {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Describe([]ObjectFile{{Name: "fuzz.bpf.o", Data: data}})
		if err != nil {
			if !errors.Is(err, ErrInvalidObject) {
				t.Fatalf("error %q is not ErrInvalidObject", err)
			}
			return
		}
		if len(cfg.Objects) != 1 || len(cfg.Objects[0].Programs) == 0 {
			t.Fatalf("described %d objects, the first with %d programs", len(cfg.Objects), len(cfg.Objects[0].Programs))
		}
		if o := cfg.Objects[0]; o.Digest != digest.FromBytes(data) || o.Size != int64(len(data)) {
			t.Fatalf("object described as %s, %d bytes", o.Digest, o.Size)
		}
	})
}

// The blobs of an artifact FuzzReadArtifact reads. The corpus's artifact
// entries name theirs so.
var fuzzBlobs = []string{"index.json", "manifest.json", "config.json", "layer.tar.gz"}

// FuzzReadArtifact reads an artifact made of a fuzzed index, manifest,
// config and bpfman layer with Fetch and Inspect. The JSON blobs are corpus
// templates: {{digest config.json}} is the digest of the config, and so on,
// so that mutations keep the blobs linked. Every error must wrap one of the
// package's sentinels; nothing may panic.
func FuzzReadArtifact(f *testing.F) {
	c := corpus(f)
	table, err := c.Table("artifact")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range table.Entries {
		var seed [4][]byte
		for i, name := range fuzzBlobs {
			data, err := e.Raw(name)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				f.Fatal(err)
			}
			seed[i] = data
		}
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	objects := map[string][]byte{}
	for _, name := range []string{"xdp_counter", "tc_counter"} {
		if objects["@"+name], err = c.Object(name); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, index, manifest, config, layer []byte) {
		raw := map[string][]byte{"index.json": index, "manifest.json": manifest, "config.json": config, "layer.tar.gz": layer}
		blobs, err := badinput.ExpandBlobs(raw, objects, nil, nil)
		if err != nil {
			return // a template the mutation broke
		}
		store := blobStore{}
		for _, data := range blobs {
			store[digest.FromBytes(data)] = data
		}
		rootName := "index.json"
		if len(index) == 0 {
			rootName = "manifest.json"
		}
		data := blobs[rootName]
		root := ocispec.Descriptor{MediaType: badinput.MediaTypeOf(rootName, data), Digest: digest.FromBytes(data), Size: int64(len(data))}
		ctx := context.Background()
		bc, err := Fetch(ctx, store, root, ocispec.Platform{OS: "linux", Architecture: "amd64"})
		checkClassified(t, "Fetch", err)
		if err == nil {
			described := map[string]bool{}
			for _, o := range bc.Config.Objects {
				described[o.Name] = true
			}
			for _, o := range bc.Objects {
				if !described[o.Name] {
					t.Fatalf("Fetch returned object %s, which its config does not describe", o.Name)
				}
			}
		}
		_, err = Inspect(ctx, store, root)
		checkClassified(t, "Inspect", err)
	})
}

// checkClassified fails the test unless err is nil or wraps one of the
// sentinels of a read.
func checkClassified(t *testing.T, op string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, sentinel := range []error{ErrNotFound, ErrUnsupported, ErrDigestMismatch, ErrInvalidObject} {
		if errors.Is(err, sentinel) {
			return
		}
	}
	t.Fatalf("%s: error %q wraps none of the package's sentinels", op, err)
}

// blobStore is a content.Fetcher over blobs by digest.
type blobStore map[digest.Digest][]byte

func (s blobStore) Fetch(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	data, ok := s[desc.Digest]
	if !ok {
		return nil, fmt.Errorf("%s: %w", desc.Digest, errdef.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// FuzzParseReference parses a reference: it must parse with an
// ErrInvalidReference or give a Reference whose String parses back to it.
func FuzzParseReference(f *testing.F) {
	c := corpus(f)
	table, err := c.Table("reference")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range table.Entries {
		f.Add(e.Input)
	}
	for _, s := range []string{
		"quay.io/bpfd/xdp:v1", "localhost:5000/a/b:v1@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
		"[::1]:5000/x", "oci:/tmp/a:b/lay:v2", "oci-archive:x.tar@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", "file:/tmp/x.bpf.o",
		"file:/tmp/x.bpf.o@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", "file:/tmp/a@b.o", "myregistry:5000/x",
		"[::ffff:127.0.0.1]:5000/x", "ocl:/tmp/x:v1", "127.0.0.1:/a/b", "localhost:65535/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseReference(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidReference) {
				t.Fatalf("ParseReference(%q): error %q is not ErrInvalidReference", s, err)
			}
			return
		}
		again, err := ParseReference(ref.String())
		if err != nil || again != ref {
			t.Fatalf("ParseReference(%q) = %+v, whose String %q parses to %+v, %v", s, ref, ref.String(), again, err)
		}
		if ref.Transport == Registry {
			if err := checkHost(ref.Registry); err != nil {
				t.Fatalf("ParseReference(%q) gave registry %q: %v", s, ref.Registry, err)
			}
		}
		if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			t.Fatalf("ParseReference(%q) accepted an unprintable character", s)
		}
	})
}
