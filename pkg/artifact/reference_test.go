package artifact

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseReference(t *testing.T) {
	const d = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	cases := map[string]struct {
		in      string
		want    Reference
		wantErr error
		wantMsg string
	}{
		"registry tag":        {in: "quay.io/bpfd/xdp:v1", want: Reference{Transport: Registry, Registry: "quay.io", Repository: "bpfd/xdp", Tag: "v1"}},
		"registry port":       {in: "127.0.0.1:5000/xdp", want: Reference{Transport: Registry, Registry: "127.0.0.1:5000", Repository: "xdp"}},
		"registry tag digest": {in: "localhost:5000/a/b:v1@" + d, want: Reference{Transport: Registry, Registry: "localhost:5000", Repository: "a/b", Tag: "v1", Digest: d}},
		"layout":              {in: "oci:/tmp/lay", want: Reference{Transport: Layout, Path: "/tmp/lay"}},
		"layout tag":          {in: "oci:/tmp/lay:v2", want: Reference{Transport: Layout, Path: "/tmp/lay", Tag: "v2"}},
		"layout colon dir":    {in: "oci:/tmp/a:b/lay", want: Reference{Transport: Layout, Path: "/tmp/a:b/lay"}},
		"layout digest":       {in: "oci:/tmp/lay@" + d, want: Reference{Transport: Layout, Path: "/tmp/lay", Digest: d}},
		"archive":             {in: "oci-archive:/tmp/x.tar:v1", want: Reference{Transport: Archive, Path: "/tmp/x.tar", Tag: "v1"}},
		"file":                {in: "file:/tmp/x.bpf.o", want: Reference{Transport: File, Path: "/tmp/x.bpf.o"}},
		"empty":               {in: "", wantErr: ErrInvalidReference},
		"no host":             {in: "xdp:v1", wantErr: ErrInvalidReference},
		"bare repo":           {in: "ubuntu/xdp", wantErr: ErrInvalidReference},
		"bad digest":          {in: "quay.io/x@sha256:zz", wantErr: ErrInvalidReference},
		"bad tag":             {in: "oci:/tmp/x:-bad", wantErr: ErrInvalidReference},
		"empty path":          {in: "oci:", wantErr: ErrInvalidReference},
		"upper repo":          {in: "quay.io/XDP", wantErr: ErrInvalidReference},
		"one-label host port": {in: "myregistry:5000/xdp", want: Reference{Transport: Registry, Registry: "myregistry:5000", Repository: "xdp"}},
		"ipv6 host":           {in: "[::1]:5000/xdp", want: Reference{Transport: Registry, Registry: "[::1]:5000", Repository: "xdp"}},
		"file digest":         {in: "file:/tmp/x.bpf.o@" + d, want: Reference{Transport: File, Path: "/tmp/x.bpf.o", Digest: d}},
		"file at sign":        {in: "file:/tmp/a@b.bpf.o", want: Reference{Transport: File, Path: "/tmp/a@b.bpf.o"}},
		"file bad digest":     {in: "file:/tmp/x.bpf.o@sha256:zz", wantErr: ErrInvalidReference, wantMsg: `digest "sha256:zz"`},

		// Typos of a transport or host never reach the network.
		"transport typo":         {in: "ocl:/tmp/x:v1", wantErr: ErrInvalidReference, wantMsg: `"ocl:" is not a transport (oci:, oci-archive:, file:) and "ocl" not a registry host[:port]/repository; did you mean "oci:"?`},
		"transport upper case":   {in: "OCI:/tmp/x", wantErr: ErrInvalidReference, wantMsg: `did you mean "oci:"?`},
		"archive typo":           {in: "oci-archve:f", wantErr: ErrInvalidReference, wantMsg: `did you mean "oci-archive:"?`},
		"unknown transport":      {in: "docker://quay.io/x", wantErr: ErrInvalidReference, wantMsg: `"docker:" is not a transport`},
		"empty port":             {in: "127.0.0.1:/a/b", wantErr: ErrInvalidReference, wantMsg: `registry "127.0.0.1:": empty port`},
		"empty port, name":       {in: "quay.io:/a/b", wantErr: ErrInvalidReference, wantMsg: "empty port"},
		"port zero":              {in: "localhost:0/x", wantErr: ErrInvalidReference, wantMsg: `port "0" is not a number from 1 to 65535`},
		"port too large":         {in: "localhost:65536/x", wantErr: ErrInvalidReference, wantMsg: `port "65536"`},
		"port not a number":      {in: "quay.io:http/x", wantErr: ErrInvalidReference, wantMsg: `port "http"`},
		"ipv6 without brackets":  {in: "::1:5000/x", wantErr: ErrInvalidReference, wantMsg: "must be in brackets"},
		"ipv6 unclosed":          {in: "[::1:5000/x", wantErr: ErrInvalidReference, wantMsg: "no ']'"},
		"ipv4 in short notation": {in: "127.1:5000/x", wantErr: ErrInvalidReference, wantMsg: `"127.1" is neither an IPv4 address nor a host name`},
		"underscore host":        {in: "my_registry.example.com/x", wantErr: ErrInvalidReference, wantMsg: "is not a host name"},
		"hyphen label":           {in: "-a.example.com/x", wantErr: ErrInvalidReference, wantMsg: "is not a host name"},
		"empty label":            {in: "a..example.com/x", wantErr: ErrInvalidReference, wantMsg: "is not a host name"},
		"newline":                {in: "quay.io/bpfd/x\ndp", wantErr: ErrInvalidReference, wantMsg: "unprintable character U+000A at byte 14"},
		"bidi override":          {in: "oci:/tmp/\u202ex", wantErr: ErrInvalidReference, wantMsg: "unprintable character U+202E"},
		"nul in file":            {in: "file:/tmp/x\x00.o", wantErr: ErrInvalidReference, wantMsg: "unprintable character U+0000"},
		"not utf-8":              {in: "oci:/tmp/\xff", wantErr: ErrInvalidReference, wantMsg: "not valid UTF-8"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ParseReference(tc.in)
			if !errors.Is(err, tc.wantErr) || (err != nil && !strings.Contains(err.Error(), tc.wantMsg)) {
				t.Fatalf("ParseReference(%q) error = %v, want %v containing %q", tc.in, err, tc.wantErr, tc.wantMsg)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseReference(%q) (-want +got):\n%s", tc.in, diff)
			}
			if err == nil {
				again, err := ParseReference(got.String())
				if err != nil || again != got {
					t.Errorf("round trip of %q through %q = %+v, %v", tc.in, got.String(), again, err)
				}
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for in, want := range map[string]bool{
		"localhost:5000/x": true, "127.0.0.1:5000/x": true, "[::1]:5000/x": true,
		"LOCALHOST/x": true, "127.255.0.3/x": true, "[::ffff:127.0.0.1]:5000/x": true,
		"quay.io/x": false, "10.0.0.1:5000/x": false, "localhost.example.com/x": false,
		"127.evil.example.com:5000/x": false, "127x.example.com/x": false, "[::2]:5000/x": false,
	} {
		ref, err := ParseReference(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := ref.IsLoopback(); got != want {
			t.Errorf("%s: IsLoopback() = %v, want %v", in, got, want)
		}
	}
}

func ExampleParseReference() {
	ref, err := ParseReference("oci:/var/lib/bytecode:v1")
	if err != nil {
		panic(err)
	}
	fmt.Println(ref.Transport, ref.Path, ref.Tag, ref.Name())
	// Output: oci /var/lib/bytecode v1 oci:/var/lib/bytecode
}
