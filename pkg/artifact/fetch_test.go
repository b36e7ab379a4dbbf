package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
)

func mustPlatform(t *testing.T, s string) ocispec.Platform {
	t.Helper()
	p, err := ParsePlatform(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFetchPlatforms(t *testing.T) {
	ctx := context.Background()
	le, be := example(t, "xdp_counter"), readObject(t, "testdata/xdp_counter_be.bpf.o")
	store := memory.New()
	index, err := BuildIndex(ctx, store, []PlatformObjects{
		{Platform: mustPlatform(t, "linux/amd64"), Objects: []ObjectFile{le}},
		{Platform: mustPlatform(t, "linux/bpfel"), Objects: []ObjectFile{le}},
		{Platform: mustPlatform(t, "linux/s390x"), Objects: []ObjectFile{be}},
	}, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	single, err := Build(ctx, store, []ObjectFile{le}, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		root     ocispec.Descriptor
		platform string
		want     string // platform of the entry read, "-" for a lone manifest
		object   ObjectFile
		wantErr  error
	}{
		"exact":                           {root: index, platform: "linux/amd64", want: "linux/amd64", object: le},
		"arch-neutral":                    {root: index, platform: "linux/arm64", want: "linux/bpfel", object: le},
		"variant":                         {root: index, platform: "linux/arm64/v8", want: "linux/bpfel", object: le},
		"big-endian":                      {root: index, platform: "linux/s390x", want: "linux/s390x", object: be},
		"no big-endian fallback":          {root: index, platform: "linux/ppc64", wantErr: ErrNotFound},
		"other os":                        {root: index, platform: "windows/amd64", wantErr: ErrNotFound},
		"lone manifest":                   {root: single, platform: "linux/riscv64", want: "-", object: le},
		"lone manifest, wrong byte order": {root: single, platform: "linux/s390x", wantErr: ErrUnsupported},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			bc, err := Fetch(ctx, store, tc.root, mustPlatform(t, tc.platform))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Fetch error = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			got := "-"
			if bc.Platform != nil {
				got = FormatPlatform(*bc.Platform)
			}
			if got != tc.want || bc.Root.Digest != tc.root.Digest || bc.Format != FormatBpfd {
				t.Errorf("read %s (root %s, format %s), want %s", got, bc.Root.Digest, bc.Format, tc.want)
			}
			want := []ObjectFile{{Name: tc.object.Name, Data: tc.object.Data}}
			if diff := cmp.Diff(want, bc.Objects); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFetchBadArtifacts reads artifacts that are not what they claim: each
// must fail with its sentinel and a message that names the culprit.
func TestFetchBadArtifacts(t *testing.T) {
	ctx := context.Background()
	xdp := example(t, "xdp_counter")
	cfg, err := Describe([]ObjectFile{xdp})
	if err != nil {
		t.Fatal(err)
	}
	cfgJSON, _ := json.Marshal(cfg)
	layer := func(store content.Pusher, title string) ocispec.Descriptor {
		return pushBlob(t, store, MediaTypeObject, xdp.Data, map[string]string{ocispec.AnnotationTitle: title})
	}
	cases := map[string]struct {
		root    func(store *memory.Store) ocispec.Descriptor
		wantErr error
		wantMsg string
	}{
		"unknown artifactType": {
			root: func(s *memory.Store) ocispec.Descriptor {
				return pushManifestJSON(t, s, "application/vnd.example.thing.v1", ocispec.DescriptorEmptyJSON, layer(s, "x.o"))
			},
			wantErr: ErrUnsupported, wantMsg: `artifactType "application/vnd.example.thing.v1" is not application/vnd.bpfd.bytecode.v1`,
		},
		"unknown config media type": {
			root: func(s *memory.Store) ocispec.Descriptor {
				return pushManifestJSON(t, s, "", pushBlob(t, s, "application/vnd.example.config+json", []byte("{}"), nil), layer(s, "x.o"))
			},
			wantErr: ErrUnsupported, wantMsg: `artifactType "application/vnd.example.config+json"`,
		},
		"unknown layer media type": {
			root: func(s *memory.Store) ocispec.Descriptor {
				l := pushBlob(t, s, "application/x-elf", xdp.Data, map[string]string{ocispec.AnnotationTitle: xdp.Name})
				return pushManifestJSON(t, s, ArtifactType, pushBlob(t, s, MediaTypeConfig, cfgJSON, nil), l)
			},
			wantErr: ErrUnsupported, wantMsg: `media type "application/x-elf" is not application/vnd.bpfd.bytecode.object.v1`,
		},
		"config from another object": {
			root: func(s *memory.Store) ocispec.Descriptor {
				other := example(t, "tc_counter")
				l := pushBlob(t, s, MediaTypeObject, other.Data, map[string]string{ocispec.AnnotationTitle: xdp.Name})
				return pushManifestJSON(t, s, ArtifactType, pushBlob(t, s, MediaTypeConfig, cfgJSON, nil), l)
			},
			wantErr: ErrUnsupported, wantMsg: "the config does not describe this object",
		},
		"path in a title": {
			root: func(s *memory.Store) ocispec.Descriptor {
				return pushManifestJSON(t, s, ArtifactType, pushBlob(t, s, MediaTypeConfig, cfgJSON, nil), layer(s, "../../etc/cron.d/x"))
			},
			wantErr: ErrUnsupported, wantMsg: "contains a path separator",
		},
		"newer config schema": {
			root: func(s *memory.Store) ocispec.Descriptor {
				newer := bytes.Replace(cfgJSON, []byte(`"schemaVersion":1`), []byte(`"schemaVersion":2`), 1)
				return pushManifestJSON(t, s, ArtifactType, pushBlob(t, s, MediaTypeConfig, newer, nil), layer(s, xdp.Name))
			},
			wantErr: ErrUnsupported, wantMsg: "schemaVersion 2, this reader knows 1",
		},
		"missing layer": {
			root: func(s *memory.Store) ocispec.Descriptor {
				absent := ocispec.Descriptor{MediaType: MediaTypeObject, Digest: digest.FromBytes(xdp.Data), Size: int64(len(xdp.Data)), Annotations: map[string]string{ocispec.AnnotationTitle: xdp.Name}}
				return pushManifestJSON(t, s, ArtifactType, pushBlob(t, s, MediaTypeConfig, cfgJSON, nil), absent)
			},
			wantErr: ErrNotFound, wantMsg: "layer " + digest.FromBytes(xdp.Data).String() + " (xdp_counter.bpf.o)",
		},
		"container image without labels": {
			root: func(s *memory.Store) ocispec.Descriptor {
				return bpfmanImage(t, s, xdp, map[string]string{"maintainer": "me"}, false)
			},
			wantErr: ErrUnsupported, wantMsg: "a container image without the io.ebpf.programs label, not bytecode",
		},
		"bpfman label naming a missing program": {
			root: func(s *memory.Store) ocispec.Descriptor {
				return bpfmanImage(t, s, xdp, map[string]string{LabelPrograms: `{"xdp_pass":"xdp"}`}, false)
			},
			wantErr: ErrUnsupported, wantMsg: "label io.ebpf.programs names program xdp_pass, which xdp_counter.bpf.o does not define",
		},
		"bpfman label not JSON": {
			root: func(s *memory.Store) ocispec.Descriptor {
				return bpfmanImage(t, s, xdp, map[string]string{LabelPrograms: "xdp_counter"}, false)
			},
			wantErr: ErrUnsupported, wantMsg: "label io.ebpf.programs is not a JSON object",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			store := memory.New()
			root := tc.root(store)
			_, err := Fetch(ctx, store, root, HostPlatform())
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Fetch error = %v, want %v", err, tc.wantErr)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.wantMsg) || !strings.Contains(msg, root.Digest.String()) {
				t.Errorf("error %q: want it to name %s and say %q", msg, root.Digest, tc.wantMsg)
			}
			if _, err := Inspect(ctx, store, root); err == nil && tc.wantErr != ErrNotFound {
				t.Errorf("Inspect accepted what Fetch refused")
			}
		})
	}
}

// TestFetchTamperedLayout changes a layer's blob in an OCI layout on disk:
// Fetch must refuse it, naming the layer.
func TestFetchTamperedLayout(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "layout")
	ref, err := ParseReference("oci:" + dir + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	xdp := example(t, "xdp_counter")
	target, err := Open(ctx, ref, OpenOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	staged := memory.New()
	root, err := Build(ctx, staged, []ObjectFile{xdp}, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Copy(ctx, staged, root, target, "v1", CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := target.Close(); err != nil {
		t.Fatal(err)
	}
	tamper(t, dir, xdp.digest())

	target, err = Open(ctx, ref, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	desc, err := target.ResolveReference(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Fetch(ctx, target, desc, HostPlatform())
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("Fetch error = %v, want ErrDigestMismatch", err)
	}
	if want := fmt.Sprintf("layer %s (xdp_counter.bpf.o): content does not match its digest", xdp.digest()); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to contain %q", err, want)
	}
}

func TestFetchBpfman(t *testing.T) {
	ctx := context.Background()
	xdp := example(t, "xdp_counter")
	cases := map[string]struct {
		labels map[string]string
		docker bool
	}{
		"oci": {labels: map[string]string{
			LabelPrograms: `{"xdp_counter":"xdp"}`,
			LabelMaps:     `{"xdp_stats":"array"}`,
		}},
		"docker": {docker: true, labels: map[string]string{LabelPrograms: `{"xdp_counter":"xdp"}`}},
		"v1 labels": {labels: map[string]string{
			"io.ebpf.program_name": "counter", "io.ebpf.bpf_function_name": "xdp_counter",
			"io.ebpf.program_type": "xdp", "io.ebpf.filename": "xdp_counter.bpf.o",
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			store := memory.New()
			root := bpfmanImage(t, store, xdp, tc.labels, tc.docker)
			bc, err := Fetch(ctx, store, root, HostPlatform())
			if err != nil {
				t.Fatal(err)
			}
			if bc.Format != FormatBpfman {
				t.Errorf("format %s, want bpfman", bc.Format)
			}
			if diff := cmp.Diff(tc.labels, bc.Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if len(bc.Objects) != 1 || !bytes.Equal(bc.Objects[0].Data, xdp.Data) || bc.Objects[0].Name != xdp.Name {
				t.Fatalf("objects: %d, want %s", len(bc.Objects), xdp.Name)
			}
			if p, _, ok := bc.Config.Program("xdp_counter"); !ok || p.Type != "xdp" {
				t.Errorf("config from the object: program xdp_counter %+v, %v", p, ok)
			}
			d, err := Inspect(ctx, store, root)
			if err != nil || d.Manifests[0].Format != FormatBpfman {
				t.Errorf("Inspect: %+v, %v", d, err)
			}
		})
	}
}

// pushBlob pushes data to store and returns its descriptor.
func pushBlob(t *testing.T, store content.Pusher, mediaType string, data []byte, annotations map[string]string) ocispec.Descriptor {
	t.Helper()
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data)), Annotations: annotations}
	if err := push(context.Background(), store, desc, data); err != nil {
		t.Fatal(err)
	}
	return desc
}

// pushManifestJSON pushes an image manifest of the config and layers.
func pushManifestJSON(t *testing.T, store content.Pusher, artifactType string, config ocispec.Descriptor, layers ...ocispec.Descriptor) ocispec.Descriptor {
	t.Helper()
	if config.Digest == ocispec.DescriptorEmptyJSON.Digest {
		pushBlob(t, store, config.MediaType, ocispec.DescriptorEmptyJSON.Data, nil)
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType, Config: config, Layers: layers,
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return pushBlob(t, store, ocispec.MediaTypeImageManifest, data, nil)
}

// bpfmanImage pushes a container image as bpfman's tooling builds it
// (FROM scratch, COPY the object, LABEL io.ebpf.*): an image config with the
// labels and one gzipped tar layer holding the object, with OCI or Docker
// media types.
func bpfmanImage(t *testing.T, store content.Pusher, obj ObjectFile, labels map[string]string, docker bool) ocispec.Descriptor {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, hdr := range []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./" + obj.Name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(obj.Data))},
	} {
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tw.Write(obj.Data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	img := ocispec.Image{Platform: HostPlatform(), Config: ocispec.ImageConfig{Labels: labels}}
	img.RootFS.Type = "layers"
	cfgJSON, err := json.Marshal(img)
	if err != nil {
		t.Fatal(err)
	}
	manifestType, configType, layerType := ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageLayerGzip
	if docker {
		manifestType, configType, layerType = mediaTypeDockerManifest, mediaTypeDockerConfig, mediaTypeDockerLayerGzip
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: manifestType,
		Config: pushBlob(t, store, configType, cfgJSON, nil),
		Layers: []ocispec.Descriptor{pushBlob(t, store, layerType, buf.Bytes(), nil)},
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return pushBlob(t, store, manifestType, data, nil)
}

// tamper overwrites the blob d in the layout at dir with other bytes of the
// same size.
func tamper(t *testing.T, dir string, d digest.Digest) {
	t.Helper()
	path := filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded())
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func ExampleFetch() {
	ctx := context.Background()
	ref, err := ParseReference("oci:testdata/layout:v1")
	if err != nil {
		panic(err)
	}
	target, err := Open(ctx, ref, OpenOptions{})
	if err != nil {
		panic(err)
	}
	defer target.Close()
	root, err := target.ResolveReference(ctx)
	if err != nil {
		panic(err)
	}
	bc, err := Fetch(ctx, target, root, mustPlatformExample("linux/arm64"))
	if err != nil {
		panic(err)
	}
	fmt.Println(bc.Format, FormatPlatform(*bc.Platform))
	for _, o := range bc.Objects {
		fmt.Println(o.Name, len(o.Data) > 0)
	}
	// Output:
	// bpfd linux/bpfel
	// xdp_counter.bpf.o true
}

func mustPlatformExample(s string) ocispec.Platform {
	p, err := ParsePlatform(s)
	if err != nil {
		panic(err)
	}
	return p
}
