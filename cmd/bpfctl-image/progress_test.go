package main

import (
	"bytes"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestProgressLine(t *testing.T) {
	var buf bytes.Buffer
	report := progressTo(&buf, "copied")
	report(ocispec.Descriptor{
		Digest:      digest.FromString("x"),
		Size:        3448,
		Annotations: map[string]string{ocispec.AnnotationTitle: "xdp_counter.bpf.o"},
	})
	report(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("y"), Size: 820})
	want := "copied 2d711642b726   3.4 KiB  xdp_counter.bpf.o\n" +
		"copied a1fce4363854     820 B  application/vnd.oci.image.manifest.v1+json\n"
	if got := buf.String(); got != want {
		t.Errorf("progress:\n%s\nwant:\n%s", got, want)
	}
}
