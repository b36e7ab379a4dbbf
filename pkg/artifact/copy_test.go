package artifact

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/registry"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// signed is an artifact with the kinds of referrers Copy must carry: an OCI
// 1.1 referrer of the index, a referrer of that referrer, a referrer of one
// platform manifest, and a cosign-style "sha256-<hex>.sig" tag.
type signed struct {
	root, child ocispec.Descriptor
	referrers   []ocispec.Descriptor
	sigTag      string
	sig         ocispec.Descriptor
	objects     []ObjectFile
}

// buildSigned builds the signed artifact into dst and tags its root "v1".
func buildSigned(t *testing.T, dst oras.Target) signed {
	t.Helper()
	ctx := context.Background()
	xdp := example(t, "xdp_counter")
	root, err := BuildIndex(ctx, dst, []PlatformObjects{
		{Platform: mustPlatform(t, "linux/amd64"), Objects: []ObjectFile{xdp}},
		{Platform: mustPlatform(t, "linux/arm64"), Objects: []ObjectFile{xdp}},
	}, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var index ocispec.Index
	fetchJSON(t, dst, root, &index)
	refer := func(subject ocispec.Descriptor, artifactType, payload string) ocispec.Descriptor {
		layer := pushBlob(t, dst, "application/vnd.example.payload", []byte(payload), nil)
		desc, err := oras.PackManifest(ctx, dst, oras.PackManifestVersion1_1, artifactType, oras.PackManifestOptions{
			Subject: &subject, Layers: []ocispec.Descriptor{layer},
			ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "2024-01-01T00:00:00Z"},
		})
		if err != nil {
			t.Fatal(err)
		}
		return desc
	}
	s := signed{root: root, child: index.Manifests[1], objects: []ObjectFile{xdp}}
	sig := refer(root, "application/vnd.example.signature", "signature of the index")
	s.referrers = []ocispec.Descriptor{
		sig,
		refer(sig, "application/vnd.example.countersignature", "signature of the signature"),
		refer(s.child, "application/vnd.example.signature", "signature of the arm64 manifest"),
	}
	legacy, err := oras.PackManifest(ctx, dst, oras.PackManifestVersion1_1, "application/vnd.example.legacy-signature", oras.PackManifestOptions{
		Layers:              []ocispec.Descriptor{pushBlob(t, dst, "application/vnd.example.payload", []byte("legacy signature"), nil)},
		ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "2024-01-01T00:00:00Z"},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.sigTag = "sha256-" + root.Digest.Encoded() + ".sig"
	s.sig = legacy
	for tag, desc := range map[string]ocispec.Descriptor{"v1": root, s.sigTag: legacy} {
		if err := dst.Tag(ctx, desc, tag); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// checkSigned checks that dst holds the signed artifact, tagged tag, with
// everything that came with it.
func checkSigned(t *testing.T, dst oras.ReadOnlyGraphTarget, s signed, tag string) {
	t.Helper()
	ctx := context.Background()
	got, err := dst.Resolve(ctx, tag)
	if err != nil || got.Digest != s.root.Digest {
		t.Fatalf("tag %s: %v, %v; want %s", tag, got.Digest, err, s.root.Digest)
	}
	if got, err := dst.Resolve(ctx, s.sigTag); err != nil || got.Digest != s.sig.Digest {
		t.Errorf("tag %s: %v, %v; want %s", s.sigTag, got.Digest, err, s.sig.Digest)
	}
	var found []string
	for _, subject := range []ocispec.Descriptor{s.root, s.referrers[0], s.child} {
		referrers, err := registry.Referrers(ctx, dst, subject, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range referrers {
			found = append(found, r.Digest.String())
		}
	}
	var want []string
	for _, r := range s.referrers {
		want = append(want, r.Digest.String())
	}
	slices.Sort(found)
	slices.Sort(want)
	if diff := cmp.Diff(want, found); diff != "" {
		t.Errorf("referrers in the destination (-want +got):\n%s", diff)
	}
	bc, err := Fetch(ctx, dst, got, mustPlatform(t, "linux/arm64"))
	if err != nil {
		t.Fatal(err)
	}
	if bc.Descriptor.Digest != s.child.Digest {
		t.Errorf("fetched %s for linux/arm64, want %s", bc.Descriptor.Digest, s.child.Digest)
	}
}

func TestCopyCarriesReferrers(t *testing.T) {
	ctx := context.Background()
	srcRef := mustReference(t, "oci:"+filepath.Join(t.TempDir(), "src")+":v1")
	src := mustOpen(t, srcRef, OpenOptions{Create: true})
	s := buildSigned(t, src)

	for _, dst := range []string{"oci:" + filepath.Join(t.TempDir(), "dst") + ":audit", "oci-archive:" + filepath.Join(t.TempDir(), "dst.tar") + ":audit"} {
		t.Run(strings.SplitN(dst, ":", 2)[0], func(t *testing.T) {
			dstRef := mustReference(t, dst)
			target := mustOpen(t, dstRef, OpenOptions{Create: true})
			result, err := Copy(ctx, src, s.root, target, "audit", CopyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := target.Close(); err != nil {
				t.Fatal(err)
			}
			if len(result.Referrers) != 3 || !slices.Equal(result.Tags, []string{s.sigTag}) {
				t.Errorf("result: %d referrers, tags %v; want 3, [%s]", len(result.Referrers), result.Tags, s.sigTag)
			}
			reopened := mustOpen(t, dstRef, OpenOptions{})
			defer reopened.Close()
			checkSigned(t, reopened, s, "audit")
		})
	}
}

func TestCopySkipReferrers(t *testing.T) {
	ctx := context.Background()
	src := memory.New()
	s := buildSigned(t, src)
	dst := memory.New()
	result, err := Copy(ctx, src, s.root, dst, "v1", CopyOptions{SkipReferrers: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(result.Referrers)+len(result.Tags) != 0 {
		t.Errorf("copied %d referrers and %v", len(result.Referrers), result.Tags)
	}
	if _, err := dst.Resolve(ctx, s.sigTag); err == nil {
		t.Errorf("%s copied despite SkipReferrers", s.sigTag)
	}
}

// TestCopyTamperedSourceLeavesDestinationUntouched copies from a layout with
// a tampered layer to a new layout, an existing layout and an archive: each
// must fail, naming the layer, and be as it was before.
func TestCopyTamperedSourceLeavesDestinationUntouched(t *testing.T) {
	ctx := context.Background()
	srcDir := filepath.Join(t.TempDir(), "src")
	src := mustOpen(t, mustReference(t, "oci:"+srcDir), OpenOptions{Create: true})
	staged := memory.New()
	tc := example(t, "tc_counter")
	root, err := Build(ctx, staged, []ObjectFile{tc}, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Copy(ctx, staged, root, src, "v2", CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	tamper(t, srcDir, tc.digest())

	// An existing layout and archive, with v2 tagged to an older artifact.
	base := t.TempDir()
	older, err := Build(ctx, staged, []ObjectFile{example(t, "xdp_counter")}, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"oci:" + base + "/existing", "oci-archive:" + base + "/existing.tar"} {
		target := mustOpen(t, mustReference(t, ref), OpenOptions{Create: true})
		if _, err := Copy(ctx, staged, older, target, "v2", CopyOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := target.Close(); err != nil {
			t.Fatal(err)
		}
	}

	for name, dst := range map[string]string{
		"new layout":       "oci:" + base + "/new",
		"new archive":      "oci-archive:" + base + "/new.tar",
		"existing layout":  "oci:" + base + "/existing:v2",
		"existing archive": "oci-archive:" + base + "/existing.tar:v2",
	} {
		t.Run(name, func(t *testing.T) {
			before := snapshot(t, base)
			ref := mustReference(t, dst)
			target := mustOpen(t, ref, OpenOptions{Create: true})
			_, err := Copy(ctx, src, root, target, "v2", CopyOptions{})
			target.Discard()
			if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), "layer "+tc.digest().String()+" (tc_counter.bpf.o)") {
				t.Fatalf("Copy error = %v, want ErrDigestMismatch naming the layer", err)
			}
			if diff := cmp.Diff(before, snapshot(t, base)); diff != "" {
				t.Errorf("destination changed (-before +after):\n%s", diff)
			}
			if _, err := os.Stat(ref.Path); strings.Contains(dst, "/new") && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: created (%v)", ref.Path, err)
			}
		})
	}
}

func TestCopyRegistryDown(t *testing.T) {
	reg := testutil.StartRegistry(t)
	reg.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang fails the test
	defer cancel()
	staged := memory.New()
	root, err := Build(ctx, staged, []ObjectFile{example(t, "xdp_counter")}, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	target := mustOpen(t, mustReference(t, reg.Host+"/bytecode/xdp:v1"), OpenOptions{})
	_, err = Copy(ctx, staged, root, target, "v1", CopyOptions{})
	if !errors.Is(err, ErrUnreachable) || ctx.Err() != nil {
		t.Fatalf("Copy error = %v, want ErrUnreachable before the deadline", err)
	}
}

// snapshot maps every file under dir to its contents.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		files[strings.TrimPrefix(path, dir)] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func mustReference(t *testing.T, s string) Reference {
	t.Helper()
	ref, err := ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func mustOpen(t *testing.T, ref Reference, opts OpenOptions) *Target {
	t.Helper()
	target, err := Open(context.Background(), ref, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Close() })
	return target
}

func ExampleCopy() {
	ctx := context.Background()
	src, err := Open(ctx, Reference{Transport: Layout, Path: "testdata/layout"}, OpenOptions{})
	if err != nil {
		panic(err)
	}
	defer src.Close()
	root, err := src.Resolve(ctx, "v1")
	if err != nil {
		panic(err)
	}
	dir, err := os.MkdirTemp("", "bpfd-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	dst, err := Open(ctx, Reference{Transport: Archive, Path: filepath.Join(dir, "bytecode.tar")}, OpenOptions{Create: true})
	if err != nil {
		panic(err)
	}
	result, err := Copy(ctx, src, root, dst, "v1", CopyOptions{})
	if err != nil {
		dst.Discard() // leaves no half-written archive
		panic(err)
	}
	if err := dst.Close(); err != nil { // writes the archive
		panic(err)
	}
	fmt.Println(result.Root.Digest == root.Digest, len(result.Referrers), result.Tags)
	// Output: true 0 []
}

func BenchmarkFetch(b *testing.B) {
	ctx := context.Background()
	store := memory.New()
	root, err := Build(ctx, store, []ObjectFile{example(b, "tc_counter"), example(b, "xdp_verdict")}, BuildOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Fetch(ctx, store, root, HostPlatform()); err != nil {
			b.Fatal(err)
		}
	}
}
