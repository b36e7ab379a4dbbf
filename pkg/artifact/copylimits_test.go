package artifact

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
)

// generic is an artifact of no particular kind, as Copy must carry any:
// a config and layers of the given sizes.
func generic(t *testing.T, store content.Pusher, layerSizes ...int) ocispec.Descriptor {
	t.Helper()
	var layers []ocispec.Descriptor
	for i, n := range layerSizes {
		data := bytes.Repeat([]byte{byte('a' + i)}, n)
		layers = append(layers, pushBlob(t, store, "application/vnd.example.layer", data, nil))
	}
	desc, err := oras.PackManifest(context.Background(), store, oras.PackManifestVersion1_1, "application/vnd.example.thing", oras.PackManifestOptions{
		Layers:              layers,
		ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "2024-01-01T00:00:00Z"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return desc
}

// refer pushes a referrer of subject of artifactType with a payload of size
// bytes, distinct by n.
func refer(t *testing.T, store content.Pusher, subject ocispec.Descriptor, artifactType string, n, size int) ocispec.Descriptor {
	t.Helper()
	payload := append([]byte(fmt.Sprintf("%s #%d ", artifactType, n)), bytes.Repeat([]byte{'.'}, size)...)
	layer := pushBlob(t, store, "application/vnd.example.payload", payload, nil)
	desc, err := oras.PackManifest(context.Background(), store, oras.PackManifestVersion1_1, artifactType, oras.PackManifestOptions{
		Subject: &subject, Layers: []ocispec.Descriptor{layer},
		ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "2024-01-01T00:00:00Z"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return desc
}

// TestCopyLimitsRefuseTheArtifact: an artifact over any of its bounds is
// refused with a *LimitError naming the bound, before anything is written.
func TestCopyLimitsRefuseTheArtifact(t *testing.T) {
	ctx := context.Background()
	src := memory.New()
	root := generic(t, src, 1000, 2000)
	cases := map[string]struct {
		limits Limits
		want   string
	}{
		"manifest": {Limits{ManifestSize: 100}, "ManifestSize"},
		"config":   {Limits{ConfigSize: 1}, "ConfigSize"},
		"blob":     {Limits{BlobSize: 1999}, "BlobSize"},
		"total":    {Limits{TotalSize: 2500}, "TotalSize"},
		"count":    {Limits{Blobs: 3}, "Blobs"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dst := memory.New()
			_, err := Copy(ctx, src, root, dst, "v1", CopyOptions{Limits: tc.limits})
			var le *LimitError
			if !errors.As(err, &le) || le.Limit != tc.want || !errors.Is(err, ErrLimit) || !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Copy error = %v, want a *LimitError for %s", err, tc.want)
			}
			if _, err := dst.Resolve(ctx, "v1"); err == nil {
				t.Error("destination tagged after a refused copy")
			}
			if ok, _ := dst.Exists(ctx, root); ok {
				t.Error("destination has the manifest after a refused copy")
			}
		})
	}
	// The same limits, met exactly, admit it.
	if _, err := Copy(ctx, src, root, memory.New(), "v1", CopyOptions{Limits: Limits{BlobSize: 2000, Blobs: 4}}); err != nil {
		t.Fatalf("Copy within the limits: %v", err)
	}
}

// TestCopySkipsReferrersPastTheirLimits: referrers over a size, past a count
// or of a type not asked for are skipped and reported, and the artifact is
// copied and tagged all the same.
func TestCopySkipsReferrersPastTheirLimits(t *testing.T) {
	ctx := context.Background()
	src := memory.New()
	root := generic(t, src, 100)
	sig := refer(t, src, root, "application/vnd.example.signature", 0, 10)
	big := refer(t, src, root, "application/vnd.example.sbom", 1, 5000)
	counter := refer(t, src, sig, "application/vnd.example.signature", 2, 10)
	deep := refer(t, src, counter, "application/vnd.example.signature", 3, 10)

	cases := map[string]struct {
		opts        CopyOptions
		wantCopied  []ocispec.Descriptor
		wantSkipped map[digest.Digest]SkipReason
	}{
		"defaults": {
			wantCopied: []ocispec.Descriptor{sig, big, counter, deep},
		},
		"referrer size": {
			opts:        CopyOptions{Limits: Limits{ReferrerSize: 4000}},
			wantCopied:  []ocispec.Descriptor{sig, counter, deep},
			wantSkipped: map[digest.Digest]SkipReason{big.Digest: SkipLimit},
		},
		"blob size": {
			opts:        CopyOptions{Limits: Limits{BlobSize: 4000}},
			wantCopied:  []ocispec.Descriptor{sig, counter, deep},
			wantSkipped: map[digest.Digest]SkipReason{big.Digest: SkipLimit},
		},
		"type": {
			opts:        CopyOptions{ReferrerTypes: []string{"application/vnd.example.signature"}},
			wantCopied:  []ocispec.Descriptor{sig, counter, deep},
			wantSkipped: map[digest.Digest]SkipReason{big.Digest: SkipType},
		},
		"depth": {
			opts:        CopyOptions{Limits: Limits{ReferrerDepth: 2}},
			wantCopied:  []ocispec.Descriptor{sig, big, counter},
			wantSkipped: map[digest.Digest]SkipReason{"": SkipLimit},
		},
		"total referrers": {
			opts:        CopyOptions{ReferrerTypes: []string{"application/vnd.example.signature"}, Limits: Limits{Referrers: 1}},
			wantCopied:  []ocispec.Descriptor{sig},
			wantSkipped: map[digest.Digest]SkipReason{big.Digest: SkipType, counter.Digest: SkipLimit},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dst := memory.New()
			result, err := Copy(ctx, src, root, dst, "v1", tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := dst.Resolve(ctx, "v1"); err != nil || got.Digest != root.Digest {
				t.Fatalf("v1 = %v, %v", got.Digest, err)
			}
			var got, want []string
			for _, r := range result.Referrers {
				got = append(got, r.Digest.String())
			}
			for _, r := range tc.wantCopied {
				want = append(want, r.Digest.String())
				if ok, _ := dst.Exists(ctx, r); !ok {
					t.Errorf("referrer %s not in the destination", r.Digest)
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("referrers copied (-want +got):\n%s", diff)
			}
			skipped := map[digest.Digest]SkipReason{}
			for _, s := range result.Skipped {
				skipped[s.Descriptor.Digest] = s.Reason
				if s.Detail == "" || !strings.Contains(s.String(), "skipped") {
					t.Errorf("skip %+v: no detail", s)
				}
			}
			if tc.wantSkipped == nil {
				tc.wantSkipped = map[digest.Digest]SkipReason{}
			}
			if diff := cmp.Diff(tc.wantSkipped, skipped); diff != "" {
				t.Errorf("skipped (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCopyReferrerFlood: 1,000 referrers of another type and 300 junk
// signatures around one real signature. Those of other types never crowd out
// the signature; the junk of its type stops at ReferrersPerSubject. Nothing
// fails.
func TestCopyReferrerFlood(t *testing.T) {
	ctx := context.Background()
	src := memory.New()
	root := generic(t, src, 10)
	for i := range 1000 {
		refer(t, src, root, "application/vnd.example.junk", i, 0)
	}
	real := refer(t, src, root, "application/vnd.example.signature", 0, 0)

	dst := memory.New()
	result, err := Copy(ctx, src, root, dst, "v1", CopyOptions{ReferrerTypes: []string{"application/vnd.example.signature"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(result.Referrers) != 1 || result.Referrers[0].Digest != real.Digest {
		t.Fatalf("copied %v, want the signature alone", result.Referrers)
	}
	if n := len(result.Skipped); n > DefaultReferrersPerSubject+1 {
		t.Errorf("%d skips reported, want at most %d and a summary", n, DefaultReferrersPerSubject+1)
	}
	last := result.Skipped[len(result.Skipped)-1]
	if last.Reason != SkipType || !strings.Contains(last.Detail, fmt.Sprintf("%d more", 1000-DefaultReferrersPerSubject)) {
		t.Errorf("last skip %v, want a summary of the rest", last)
	}

	for i := range 300 {
		refer(t, src, root, "application/vnd.example.signature", i+1, 0)
	}
	result, err = Copy(ctx, src, root, memory.New(), "v1", CopyOptions{ReferrerTypes: []string{"application/vnd.example.signature"}, Limits: Limits{ReferrersPerSubject: 50}})
	if err != nil {
		t.Fatal(err)
	}
	if len(result.Referrers) != 50 {
		t.Errorf("copied %d signatures, want the 50 ReferrersPerSubject allows", len(result.Referrers))
	}
	limited := 0
	for _, s := range result.Skipped {
		if s.Reason == SkipLimit {
			limited++
		}
	}
	if limited != 1 {
		t.Errorf("%d limit skips, want one standing for the rest", limited)
	}
}

// TestCopyTrustsContentNotDescriptors: a root descriptor that calls manifest
// bytes an index, a referrer whose listing gives it another type, and a
// referrer with another subject. Copy records what the content is.
func TestCopyTrustsContentNotDescriptors(t *testing.T) {
	ctx := context.Background()
	// A layout, like a registry, serves blobs by digest whatever the
	// media type asked for.
	src := mustOpen(t, mustReference(t, "oci:"+filepath.Join(t.TempDir(), "src")), OpenOptions{Create: true})
	root := generic(t, src, 10)
	lying := root
	lying.MediaType = ocispec.MediaTypeImageIndex

	dir := filepath.Join(t.TempDir(), "dst")
	dst := mustOpen(t, mustReference(t, "oci:"+dir), OpenOptions{Create: true})
	result, err := Copy(ctx, src, lying, dst, "v1", CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if result.Root.MediaType != ocispec.MediaTypeImageManifest {
		t.Errorf("result root media type %q, want the manifest's", result.Root.MediaType)
	}
	got, err := dst.Resolve(ctx, "v1")
	if err != nil || got.MediaType != ocispec.MediaTypeImageManifest {
		t.Errorf("layout records %q (%v), want the manifest's media type", got.MediaType, err)
	}
	n, err := FetchNode(ctx, src, lying, Limits{})
	if err != nil || n.IsIndex() || n.Descriptor.ArtifactType != "application/vnd.example.thing" {
		t.Errorf("FetchNode = %+v, %v; want a manifest of the thing", n, err)
	}

	// Fetch and Inspect are not fooled either.
	bytecode, err := Build(ctx, src, []ObjectFile{example(t, "xdp_counter")}, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bytecode.MediaType = ocispec.MediaTypeImageIndex
	bc, err := Fetch(ctx, src, bytecode, HostPlatform())
	if err != nil || bc.Root.MediaType != ocispec.MediaTypeImageManifest {
		t.Errorf("Fetch of a manifest called an index: %v, root %q", err, bc.Root.MediaType)
	}
	d, err := Inspect(ctx, src, bytecode)
	if err != nil || d.Root.MediaType != ocispec.MediaTypeImageManifest {
		t.Errorf("Inspect of a manifest called an index: %v, root %q", err, d.Root.MediaType)
	}
}

// TestFetchNodeRefuses: bytes that are no manifest, or whose own media type
// contradicts their structure.
func TestFetchNodeRefuses(t *testing.T) {
	ctx := context.Background()
	cases := map[string]struct {
		data    string
		claim   string
		wantErr error
		wantMsg string
	}{
		"not json":            {data: `{`, wantErr: ErrUnsupported, wantMsg: "not a manifest or index"},
		"schema 1":            {data: `{"schemaVersion":1,"config":{}}`, wantErr: ErrUnsupported, wantMsg: "schemaVersion 1"},
		"both":                {data: `{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae","size":3},"manifests":[]}`, wantErr: ErrUnsupported, wantMsg: "neither a manifest nor an index"},
		"index says manifest": {data: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","manifests":[]}`, wantErr: ErrUnsupported, wantMsg: "the content is not a manifest"},
		"foreign type":        {data: `{"schemaVersion":2,"mediaType":"application/vnd.oci.artifact.manifest.v1+json"}`, wantErr: ErrUnsupported, wantMsg: "is not a manifest or index"},
		"claimed json":        {data: `{"schemaVersion":2,"manifests":[]}`, claim: "application/json", wantErr: ErrUnsupported, wantMsg: `media type "application/json" is not an image manifest`},
		"too large":           {data: `{"schemaVersion":2,"manifests":[]}` + strings.Repeat(" ", 1000), wantErr: ErrLimit, wantMsg: "limit ManifestSize"},
		"bare index":          {data: `{"schemaVersion":2,"manifests":[]}`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			store := memory.New()
			desc := pushBlob(t, store, tc.claim, []byte(tc.data), nil)
			_, err := FetchNode(ctx, store, desc, Limits{ManifestSize: 1000})
			if !errors.Is(err, tc.wantErr) || (err != nil && !strings.Contains(err.Error(), tc.wantMsg)) {
				t.Fatalf("FetchNode error = %v, want %v containing %q", err, tc.wantErr, tc.wantMsg)
			}
		})
	}
}

// TestListReferrers: the subject's referrers, fetched and checked; one whose
// content names another subject is skipped; an index that lists the subject
// is not a referrer.
func TestListReferrers(t *testing.T) {
	ctx := context.Background()
	src := memory.New()
	s := buildSigned(t, src)
	list, err := ListReferrers(ctx, src, s.child, ReferrerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Referrers) != 1 || list.Referrers[0].Descriptor.Digest != s.referrers[2].Digest || len(list.Skipped) != 0 {
		t.Fatalf("referrers of the arm64 manifest: %d, skipped %v; want the one signature", len(list.Referrers), list.Skipped)
	}
	if got := list.Referrers[0].Descriptor.ArtifactType; got != "application/vnd.example.signature" {
		t.Errorf("artifact type %q", got)
	}
	list, err = ListReferrers(ctx, src, s.root, ReferrerOptions{ArtifactTypes: []string{"application/vnd.example.countersignature"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Referrers) != 0 || len(list.Skipped) != 1 || list.Skipped[0].Reason != SkipType {
		t.Errorf("countersignatures of the root: %d, skipped %v; want none and one skipped by type", len(list.Referrers), list.Skipped)
	}
}

// TestCopySkipLayers copies the signatures and configs first, then the
// layers, as the daemon checks signatures before it fetches layers.
func TestCopySkipLayers(t *testing.T) {
	ctx := context.Background()
	src := memory.New()
	s := buildSigned(t, src)
	dst := memory.New()
	if _, err := Copy(ctx, src, s.root, dst, "v1", CopyOptions{SkipLayers: true}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Copy with SkipLayers and a tag: %v, want ErrUnsupported", err)
	}
	result, err := Copy(ctx, src, s.root, dst, "", CopyOptions{SkipLayers: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(result.Referrers) != 3 {
		t.Errorf("%d referrers, want 3", len(result.Referrers))
	}
	layer := ocispec.Descriptor{MediaType: MediaTypeObject, Digest: s.objects[0].digest(), Size: int64(len(s.objects[0].Data))}
	if ok, _ := dst.Exists(ctx, layer); ok {
		t.Error("layer copied with SkipLayers")
	}
	if _, err := FetchNode(ctx, dst, result.Root, Limits{}); err != nil {
		t.Errorf("the manifest, without the layers: %v", err)
	}
	var copied []string
	result, err = Copy(ctx, src, s.root, dst, "v1", CopyOptions{OnCopied: func(d ocispec.Descriptor) { copied = append(copied, d.Digest.String()) }})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{layer.Digest.String()}, copied); diff != "" {
		t.Errorf("second copy wrote (-want +got):\n%s", diff)
	}
	checkSigned(t, dst, s, "v1")
}

func ExampleFetchNode() {
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
	n, err := FetchNode(ctx, src, root, Limits{})
	if err != nil {
		panic(err)
	}
	fmt.Println(n.IsIndex(), n.Descriptor.ArtifactType, len(n.Successors()))
	// Output: true application/vnd.bpfd.bytecode.v1 2
}

func ExampleListReferrers() {
	ctx := context.Background()
	store := memory.New()
	subject, err := oras.PackManifest(ctx, store, oras.PackManifestVersion1_1, "application/vnd.example.thing", oras.PackManifestOptions{
		ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "2024-01-01T00:00:00Z"},
	})
	if err != nil {
		panic(err)
	}
	for _, t := range []string{"application/vnd.example.signature", "application/vnd.example.sbom"} {
		if _, err := oras.PackManifest(ctx, store, oras.PackManifestVersion1_1, t, oras.PackManifestOptions{
			Subject:             &subject,
			ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "2024-01-01T00:00:00Z"},
		}); err != nil {
			panic(err)
		}
	}
	list, err := ListReferrers(ctx, store, subject, ReferrerOptions{ArtifactTypes: []string{"application/vnd.example.signature"}})
	if err != nil {
		panic(err)
	}
	for _, n := range list.Referrers {
		fmt.Println("kept", n.Descriptor.ArtifactType)
	}
	for _, s := range list.Skipped {
		fmt.Println("skipped", s.Reason, s.Detail)
	}
	// Output:
	// kept application/vnd.example.signature
	// skipped type artifact type "application/vnd.example.sbom"
}
