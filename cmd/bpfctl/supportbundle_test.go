package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRedact: each kind of secret that may reach a log, config or metric
// by mistake is removed, and text around it stays.
func TestRedact(t *testing.T) {
	for _, tc := range []struct {
		name, in, secret, keep string
	}{
		{name: "pem private key", in: "a\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIPLANTED\n-----END EC PRIVATE KEY-----\nb", secret: "PLANTED", keep: "b"},
		{name: "encrypted sigstore key", in: "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\neyJQLANTED\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----", secret: "QLANTED"},
		{name: "pem key without end", in: "x -----BEGIN RSA PRIVATE KEY-----\nMIIPLANTED", secret: "PLANTED", keep: "x "},
		{name: "yaml password", in: "user: me\npassword: hunter2\n", secret: "hunter2", keep: "user: me"},
		{name: "json auth", in: `{"auths":{"r.example":{"auth":"dXNlcjpwYXNz"}}}`, secret: "dXNlcjpwYXNz", keep: "r.example"},
		{name: "json quoted with escapes", in: `{"identitytoken":"ab\"cd","x":1}`, secret: "cd", keep: `"x":1`},
		{name: "logfmt token", in: `level=INFO token=s3cr3t-value next=1`, secret: "s3cr3t-value", keep: "next=1"},
		{name: "authorization header", in: "Authorization: Basic dXNlcjpwYXNzd29yZA==", secret: "dXNlcjpwYXNzd29yZA=="},
		{name: "bearer in text", in: "sent bearer eyJhbGciOiJSUzI1NiJ9.payload.sig to", secret: "eyJhbGciOiJSUzI1NiJ9", keep: "to"},
		{name: "url user info", in: "pull https://robot:pa55word@registry.example/bpf/x failed", secret: "pa55word", keep: "registry.example/bpf/x failed"},
		{name: "escaped json in a json string", in: `{"error":"registry said: {\"password\":\"pl\\u0041nted\"}","x":1}`, secret: "nted", keep: `\"password\":\"` + redacted + `\"}","x":1}`},
		{name: "client secret", in: "client_secret = 'xyzzy'", secret: "xyzzy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, n := redact([]byte(tc.in))
			if bytes.Contains(out, []byte(tc.secret)) || n == 0 {
				t.Errorf("redact(%q) = %q (%d redactions), still holds %q", tc.in, out, n, tc.secret)
			}
			if !bytes.Contains(out, []byte(redacted)) || !bytes.Contains(out, []byte(tc.keep)) {
				t.Errorf("redact(%q) = %q: want %q and the text around it (%q)", tc.in, out, redacted, tc.keep)
			}
		})
	}
	for _, clean := range []string{
		`{"action":"load","policy":"sha256:dcbd","rule":"images"}`,
		"registryAuthFile: /etc/bpfd/auth.json\nsocket: /run/bpfd/bpfd.sock",
		`bpfd_policy_info{fingerprint="sha256:ab"} 1`,
	} {
		if out, n := redact([]byte(clean)); n != 0 || string(out) != clean {
			t.Errorf("redact(%q) = %q, %d: nothing to redact", clean, out, n)
		}
	}
}

// TestBundleBound: items beyond the bound are cut (a log keeps its end,
// other files their start) and the archive, of incompressible content,
// stays within maxBytes; a failed item is its error in the index.
func TestBundleBound(t *testing.T) {
	const maxBytes = 2 * bundleOverhead
	big := make([]byte, 3*maxBytes)
	rand.Read(big)
	big = bytes.ReplaceAll(big, []byte("-----"), []byte("xxxxx")) // no PEM by chance
	b := newBundle("h", maxBytes, time.Unix(0, 0))
	b.add("first.txt", "src", big, nil, 32<<10, false)
	b.add("failed.txt", "src", nil, errors.New("no such thing"), 1<<20, false)
	b.add("log.txt", "src", append(append([]byte{}, big...), "THE END"...), nil, 1<<20, true)
	var out bytes.Buffer
	if err := b.write(&out); err != nil {
		t.Fatal(err)
	}
	if out.Len() > maxBytes {
		t.Errorf("archive of %d bytes, bound %d", out.Len(), maxBytes)
	}
	files, index := readBundle(t, out.Bytes())
	if f := index.Files[0]; !f.Truncated || !bytes.Equal(files["first.txt"], big[:f.Bytes]) || f.Bytes != 32<<10 {
		t.Errorf("first.txt: %+v, want the start of the content, truncated", f)
	}
	if f := index.Files[1]; f.Error != "no such thing" || files["failed.txt"] != nil {
		t.Errorf("failed.txt: %+v, want its error and no file", f)
	}
	if f := index.Files[2]; !f.Truncated || f.Bytes != maxBytes-bundleOverhead-32<<10 || !strings.HasSuffix(string(files["log.txt"]), "THE END") {
		t.Errorf("log.txt: %+v, want its end kept, as much as the bound leaves", f)
	}
}

// readBundle returns the files of a support bundle by name and its index,
// checking that index.json comes first and every file is in the index with
// its size and digest.
func readBundle(t *testing.T, archive []byte) (map[string][]byte, bundleIndex) {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	var order []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name, ok := strings.CutPrefix(h.Name, bundleRoot)
		if !ok || h.Typeflag != tar.TypeReg {
			t.Fatalf("entry %q (type %c) outside %s or not a file", h.Name, h.Typeflag, bundleRoot)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = b
		order = append(order, name)
	}
	if len(order) == 0 || order[0] != "index.json" {
		t.Fatalf("entries %v: want index.json first", order)
	}
	var index bundleIndex
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{"index.json": true}
	for _, f := range index.Files {
		listed[f.Name] = true
		if f.Error == "" && len(files[f.Name]) != f.Bytes {
			t.Errorf("%s: %d bytes, the index says %d", f.Name, len(files[f.Name]), f.Bytes)
		}
	}
	for name := range files {
		if !listed[name] {
			t.Errorf("%s is in the archive, not in the index", name)
		}
	}
	return files, index
}

// TestWriteFileAtomic: a failed write leaves no file, not even a
// temporary one.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	err := writeFileAtomic(filepath.Join(dir, "b.tar.gz"), func(w io.Writer) error {
		w.Write([]byte("half"))
		return errors.New("disk full")
	})
	if err == nil {
		t.Fatal("no error")
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}
