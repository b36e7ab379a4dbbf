package artifact

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
	"oras.land/oras-go/v2/content/memory"
)

// mkfifo makes a FIFO in a temporary directory. At cleanup it opens it for
// writing, without waiting, so that a reader stuck on it (a failing test)
// is let go.
func mkfifo(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	return path
}

// within runs f and fails the test if it does not return within 10 s.
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still blocked after 10 s", what)
		return nil
	}
}

func TestReadObjectFileRefusesWhatIsNotAFile(t *testing.T) {
	fifo := mkfifo(t)
	cases := map[string]struct {
		path    string
		wantMsg string
	}{
		"fifo":      {fifo, "not a regular file (a FIFO)"},
		"device":    {"/dev/null", "not a regular file (a character device)"},
		"directory": {t.TempDir(), "not a regular file (a directory)"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := within(t, "ReadObjectFile", func() error { _, err := ReadObjectFile(tc.path); return err })
			if !errors.Is(err, ErrInvalidObject) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("ReadObjectFile(%s) = %v, want ErrInvalidObject: %s", tc.path, err, tc.wantMsg)
			}
		})
	}
}

func TestReadObjectFileDigest(t *testing.T) {
	path := filepath.Join(bytecodeDir, "xdp_counter.bpf.o")
	o := readObject(t, path)
	if _, err := ReadObjectFileDigest(path, o.digest()); err != nil {
		t.Errorf("the file's own digest: %v", err)
	}
	other := example(t, "tc_counter").digest()
	_, err := ReadObjectFileDigest(path, other)
	if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), "the reference names "+other.String()) {
		t.Errorf("another digest: %v, want ErrDigestMismatch naming it", err)
	}
	ref := mustReference(t, "file:"+path+"@"+other.String())
	if _, err := ReadObjectFileDigest(ref.Path, ref.Digest); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("file:PATH@digest of other content: %v, want ErrDigestMismatch", err)
	}
}

// writeTarFile writes a tar of the headers (with content for regular files)
// to a temporary file.
func writeTarFile(t *testing.T, entries ...tarEntry) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		h.Size = int64(len(e.data))
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return writeTemp(t, "x.tar", buf.Bytes())
}

type tarEntry struct {
	hdr  tar.Header
	data []byte
}

func file(name, data string) tarEntry {
	return tarEntry{tar.Header{Name: name, Typeflag: tar.TypeReg}, []byte(data)}
}

// TestOpenArchiveRefuses: an oci-archive: that is not a regular file, or
// whose entries are links, devices, FIFOs, outside the layout, repeated, or
// more or larger than the limits allow, is refused before anything is read
// from the layout.
func TestOpenArchiveRefuses(t *testing.T) {
	ctx := context.Background()
	layoutFile := file("oci-layout", `{"imageLayoutVersion":"1.0.0"}`)
	cases := map[string]struct {
		path    string
		limits  Limits
		wantErr error
		wantMsg string
	}{
		"fifo":         {path: mkfifo(t), wantErr: ErrUnsupported, wantMsg: "not a regular file (a FIFO)"},
		"device":       {path: "/dev/zero", wantErr: ErrUnsupported, wantMsg: "not a regular file (a character device)"},
		"symlink":      {path: writeTarFile(t, layoutFile, tarEntry{hdr: tar.Header{Name: "index.json", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}}), wantMsg: `archive entry "index.json": unsupported type '2' (only files and directories)`},
		"hard link":    {path: writeTarFile(t, layoutFile, tarEntry{hdr: tar.Header{Name: "index.json", Typeflag: tar.TypeLink, Linkname: "oci-layout"}}), wantMsg: `unsupported type '1'`},
		"device entry": {path: writeTarFile(t, layoutFile, tarEntry{hdr: tar.Header{Name: "blobs", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 5}}), wantMsg: `unsupported type '3'`},
		"fifo entry":   {path: writeTarFile(t, layoutFile, tarEntry{hdr: tar.Header{Name: "index.json", Typeflag: tar.TypeFifo}}), wantMsg: `unsupported type '6'`},
		"traversal":    {path: writeTarFile(t, layoutFile, file("blobs/../../escape", "x")), wantMsg: `archive entry "blobs/../../escape" escapes the layout`},
		"absolute":     {path: writeTarFile(t, layoutFile, file("/tmp/escape", "x")), wantMsg: "escapes the layout"},
		"repeated":     {path: writeTarFile(t, layoutFile, file("index.json", "{}"), file("index.json", "{}")), wantMsg: `archive entry "index.json"`},
		"entries":      {path: writeTarFile(t, layoutFile, file("a", ""), file("b", "")), limits: Limits{ArchiveEntries: 2}, wantErr: ErrLimit, wantMsg: "archive entries: 3, more than the 2 allowed (limit ArchiveEntries)"},
		"size":         {path: writeTarFile(t, layoutFile, file("a", strings.Repeat("x", 1000))), limits: Limits{ArchiveSize: 1000}, wantErr: ErrLimit, wantMsg: "limit ArchiveSize"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ref := Reference{Transport: Archive, Path: tc.path}
			err := within(t, "Open", func() error {
				target, err := Open(ctx, ref, OpenOptions{Limits: tc.limits})
				if err == nil {
					target.Close()
				}
				return err
			})
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("Open(%s) = %v, want an error (%v) containing %q", ref, err, tc.wantErr, tc.wantMsg)
			}
			if strings.Contains(name, "traversal") || strings.Contains(name, "absolute") {
				if _, err := os.Stat("/tmp/escape"); err == nil {
					t.Error("an entry was written outside the layout")
				}
			}
		})
	}
}

// TestOpenLayoutBounds: a layout whose index.json or manifest is larger than
// Limits.ManifestSize, or whose index.json is a FIFO, is refused before
// oras-go reads it whole (or blocks on it).
func TestOpenLayoutBounds(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "layout")
	target := mustOpen(t, mustReference(t, "oci:"+dir), OpenOptions{Create: true})
	root, err := Build(ctx, target, []ObjectFile{example(t, "xdp_counter")}, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := target.Tag(ctx, root, "v1"); err != nil {
		t.Fatal(err)
	}
	target.Close()

	_, err = Open(ctx, mustReference(t, "oci:"+dir), OpenOptions{Limits: Limits{ManifestSize: root.Size - 1}})
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "manifest "+root.Digest.String()) {
		t.Errorf("a manifest over ManifestSize: %v, want ErrLimit naming it", err)
	}
	index, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, mustReference(t, "oci:"+dir), OpenOptions{Limits: Limits{ManifestSize: int64(len(index) - 1)}})
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "index.json") {
		t.Errorf("index.json over ManifestSize: %v, want ErrLimit naming it", err)
	}

	if err := os.Remove(filepath.Join(dir, "index.json")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "index.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = within(t, "Open", func() error {
		_, err := Open(ctx, mustReference(t, "oci:"+dir), OpenOptions{})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "not a regular file (a FIFO)") {
		t.Errorf("index.json a FIFO: %v", err)
	}
	if f, err := os.OpenFile(filepath.Join(dir, "index.json"), os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
		f.Close()
	}
}

// TestLayoutPushFailureLeavesNoPartialBlob: content that does not match its
// descriptor, pushed to a layout, leaves neither a blob nor a partial file
// (oras-go's ingest leaves its temporary file behind on failure).
func TestLayoutPushFailureLeavesNoPartialBlob(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "layout")
	target := mustOpen(t, mustReference(t, "oci:"+dir), OpenOptions{Create: true})
	before := snapshot(t, dir)
	data := []byte("the content pushed")
	desc := pushBlob(t, memory.New(), "application/octet-stream", []byte("the content described"), nil)
	desc.Size = int64(len(data))
	if err := target.Push(ctx, desc, bytes.NewReader(data)); err == nil {
		t.Fatal("Push of other content succeeded")
	}
	if diff := cmp.Diff(before, snapshot(t, dir)); diff != "" {
		t.Errorf("layout changed (-before +after):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(dir, "ingest")); err == nil {
		t.Error("ingest/ left in the layout")
	}
}

// TestLayoutPushFailureSparesConcurrentPushes: a failed push tidies
// ingest/ away, but not from under a push about to write there (a copy
// pushes blobs concurrently; the failure of one must not turn another's
// into "no such file or directory"). The window is small: many rounds.
func TestLayoutPushFailureSparesConcurrentPushes(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "layout")
	target := mustOpen(t, mustReference(t, "oci:"+dir), OpenOptions{Create: true})
	bad := []byte("the content pushed")
	badDesc := pushBlob(t, memory.New(), "application/octet-stream", []byte("the content described"), nil)
	badDesc.Size = int64(len(bad))
	for round := range 200 {
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for i := range 4 {
			good := []byte(fmt.Sprintf("blob %d of round %d", i, round))
			desc := pushBlob(t, memory.New(), "application/octet-stream", good, nil)
			wg.Go(func() { errs <- target.Push(ctx, desc, bytes.NewReader(good)) })
		}
		wg.Go(func() {
			if target.Push(ctx, badDesc, bytes.NewReader(bad)) == nil {
				errs <- errors.New("push of other content succeeded")
			}
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	if err := target.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ingest")); err == nil {
		t.Error("ingest/ left in the layout after Close")
	}
}
