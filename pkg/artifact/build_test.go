package artifact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
)

func TestBuildReproducible(t *testing.T) {
	ctx := context.Background()
	a, b := example(t, "xdp_verdict"), example(t, "packet_counters")
	opts := BuildOptions{Tool: "test", Annotations: map[string]string{ocispec.AnnotationSource: "https://example.com/bpf"}}

	// Separate stores, objects in either order, as two runs of a build would.
	first, err := Build(ctx, memory.New(), []ObjectFile{a, b}, opts)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Build(ctx, memory.New(), []ObjectFile{b, a}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if first.Digest != second.Digest {
		t.Errorf("same objects gave %s, then %s", first.Digest, second.Digest)
	}

	later := opts
	later.Created = time.Unix(1700000000, 0)
	third, err := Build(ctx, memory.New(), []ObjectFile{a, b}, later)
	if err != nil {
		t.Fatal(err)
	}
	if third.Digest == first.Digest {
		t.Errorf("a different created time gave the same digest %s", third.Digest)
	}
}

func TestBuildManifest(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	desc, err := Build(ctx, store, []ObjectFile{example(t, "xdp_verdict"), example(t, "cgroup_counter")}, BuildOptions{
		Created:     time.Unix(1700000000, 0),
		Tool:        "test 1.0",
		Annotations: map[string]string{ocispec.AnnotationRevision: "abc123", "com.example.team": "net"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	fetchJSON(t, store, desc, &m)
	var cfg Config
	fetchJSON(t, store, m.Config, &cfg)

	type layer struct{ MediaType, Title string }
	var layers []layer
	for _, l := range m.Layers {
		layers = append(layers, layer{l.MediaType, l.Annotations[ocispec.AnnotationTitle]})
	}
	got := map[string]any{
		"mediaType":    m.MediaType,
		"artifactType": m.ArtifactType,
		"config":       m.Config.MediaType,
		"layers":       layers,
		"annotations":  m.Annotations,
		"build":        cfg.Build,
		"objects":      []string{cfg.Objects[0].Name, cfg.Objects[1].Name},
	}
	want := map[string]any{
		"mediaType":    ocispec.MediaTypeImageManifest,
		"artifactType": ArtifactType,
		"config":       MediaTypeConfig,
		"layers":       []layer{{MediaTypeObject, "cgroup_counter.bpf.o"}, {MediaTypeObject, "xdp_verdict.bpf.o"}},
		"annotations": map[string]string{
			ocispec.AnnotationCreated:  "2023-11-14T22:13:20Z",
			ocispec.AnnotationRevision: "abc123",
			"com.example.team":         "net",
		},
		"build":   BuildInfo{Tool: "test 1.0", Revision: "abc123"},
		"objects": []string{"cgroup_counter.bpf.o", "xdp_verdict.bpf.o"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("manifest (-want +got):\n%s", diff)
	}
	for i, l := range m.Layers {
		if o := cfg.Objects[i]; o.Digest != l.Digest || o.Size != l.Size {
			t.Errorf("config object %s: %s/%d, layer %s/%d", o.Name, o.Digest, o.Size, l.Digest, l.Size)
		}
	}
}

func TestBuildIndex(t *testing.T) {
	ctx := context.Background()
	le, be := example(t, "xdp_counter"), readObject(t, "testdata/xdp_counter_be.bpf.o")
	platform := func(s string) ocispec.Platform {
		p, err := ParsePlatform(s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	store := memory.New()
	desc, err := BuildIndex(ctx, store, []PlatformObjects{
		{Platform: platform("linux/s390x"), Objects: []ObjectFile{be}},
		{Platform: platform("linux/amd64"), Objects: []ObjectFile{le}},
		{Platform: platform("linux/bpfel"), Objects: []ObjectFile{le}},
	}, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var index ocispec.Index
	fetchJSON(t, store, desc, &index)
	var got []string
	for _, m := range index.Manifests {
		got = append(got, FormatPlatform(*m.Platform)+" "+m.ArtifactType)
	}
	want := []string{"linux/amd64 " + ArtifactType, "linux/bpfel " + ArtifactType, "linux/s390x " + ArtifactType}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("index entries (-want +got):\n%s", diff)
	}
	if index.ArtifactType != ArtifactType || desc.MediaType != ocispec.MediaTypeImageIndex {
		t.Errorf("index: artifactType %q, media type %q", index.ArtifactType, desc.MediaType)
	}

	bad := map[string]struct {
		platforms []PlatformObjects
		wantMsg   string
	}{
		"wrong byte order": {
			platforms: []PlatformObjects{{Platform: platform("linux/amd64"), Objects: []ObjectFile{be}}},
			wantMsg:   "platform linux/amd64: testdata/xdp_counter_be.bpf.o: invalid BPF object: big-endian object for a little-endian platform",
		},
		"platform twice": {
			platforms: []PlatformObjects{{Platform: platform("linux/amd64"), Objects: []ObjectFile{le}}, {Platform: platform("linux/amd64"), Objects: []ObjectFile{le}}},
			wantMsg:   "platform linux/amd64: given twice",
		},
		"no platforms": {wantMsg: "no platforms"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			store := memory.New()
			_, err := BuildIndex(ctx, store, tc.platforms, BuildOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error = %v, want %q", err, tc.wantMsg)
			}
		})
	}
}

func TestBuildPushesNothingOnError(t *testing.T) {
	store := memory.New()
	_, err := Build(context.Background(), store, []ObjectFile{example(t, "xdp_counter"), readObject(t, "testdata/no_programs.bpf.o")}, BuildOptions{})
	if !errors.Is(err, ErrInvalidObject) {
		t.Fatalf("error = %v, want ErrInvalidObject", err)
	}
	desc := ocispec.Descriptor{MediaType: MediaTypeObject, Digest: example(t, "xdp_counter").digest(), Size: int64(len(example(t, "xdp_counter").Data))}
	if ok, _ := store.Exists(context.Background(), desc); ok {
		t.Error("the valid object's layer was pushed although the build failed")
	}
}

func fetchJSON(t *testing.T, store content.Fetcher, desc ocispec.Descriptor, v any) {
	t.Helper()
	data, err := content.FetchAll(context.Background(), store, desc)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

func ExampleBuild() {
	ctx := context.Background()
	object, err := ReadObjectFile("../../bytecode/xdp_verdict.bpf.o")
	if err != nil {
		panic(err)
	}
	store := memory.New() // then Copy to a registry, layout or archive
	desc, err := Build(ctx, store, []ObjectFile{object}, BuildOptions{Tool: "example"})
	if err != nil {
		panic(err)
	}
	again, _ := Build(ctx, memory.New(), []ObjectFile{object}, BuildOptions{Tool: "example"})
	fmt.Println(desc.MediaType, desc.ArtifactType)
	fmt.Println("reproducible:", desc.Digest == again.Digest)

	d, err := Inspect(ctx, store, desc)
	if err != nil {
		panic(err)
	}
	for _, o := range d.Manifests[0].Config.Objects {
		for _, p := range o.Programs {
			fmt.Println("program", p.Name, p.Type, p.Kinds)
		}
		for _, s := range o.DataSections {
			for _, g := range s.Globals {
				fmt.Println("global", s.Name, g.Name, g.Type, "read-only:", s.ReadOnly)
			}
		}
	}
	// Output:
	// application/vnd.oci.image.manifest.v1+json application/vnd.bpfd.bytecode.v1
	// reproducible: true
	// program xdp_verdict xdp [xdp]
	// global .bss packets __u64 read-only: false
	// global .rodata verdict __u32 read-only: true
}
