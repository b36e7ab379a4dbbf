package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/memory"
)

// TestMeter checks the progress line of a copy (whole blobs) and of a pull
// (bytes as they are read), redrawn in place, and that a nil meter does
// nothing.
func TestMeter(t *testing.T) {
	var buf bytes.Buffer
	clock := time.Unix(0, 0)
	m := newMeterTo(&buf, "copied")
	m.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	hook := m.onCopied()
	hook(ocispec.Descriptor{Digest: digest.FromString("x"), Size: 3448})
	hook(ocispec.Descriptor{Digest: digest.FromString("y"), Size: 200 << 20})
	m.finish()
	want := "\rcopied 1 blobs, 3.4 KiB\x1b[K\rcopied 2 blobs, 200.0 MiB\x1b[K\rcopied 2 blobs, 200.0 MiB\x1b[K\n"
	if got := buf.String(); got != want {
		t.Errorf("copy progress %q, want %q", got, want)
	}

	buf.Reset()
	store := memory.New()
	data := bytes.Repeat([]byte("x"), 5000)
	desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := store.Push(context.Background(), desc, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	m = newMeterTo(&buf, "pulled")
	m.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	rc, err := m.fetcher(store).Fetch(context.Background(), desc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	m.finish()
	if got := buf.String(); !strings.HasSuffix(got, "\rpulled 1 blobs, 4.9 KiB\x1b[K\n") {
		t.Errorf("pull progress %q", got)
	}

	var none *meter
	if none.onCopied() != nil || none.fetcher(store) != store {
		t.Error("a nil meter is not inert")
	}
	none.finish()
}
