package artifact

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseReference(t *testing.T) {
	const d = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	cases := map[string]struct {
		in      string
		want    Reference
		wantErr error
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
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ParseReference(tc.in)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ParseReference(%q) error = %v, want %v", tc.in, err, tc.wantErr)
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
		"quay.io/x": false, "10.0.0.1:5000/x": false, "localhost.example.com/x": false,
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
