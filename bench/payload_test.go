package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// TestMakePayload builds a payload with three table objects a platform and
// checks its size, that the platforms' table objects differ, and that every
// table object is a BPF object the kernel loads.
func TestMakePayload(t *testing.T) {
	root, err := testutil.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	const size = 2 * (2*maxTableObject + 1<<20)
	p, err := makePayload(context.Background(), &Env{Root: root}, t.TempDir(), "test", size, payloadPlatforms)
	if err != nil {
		t.Fatal(err)
	}
	// Each table object may be off by the alignment of the ELF's sections.
	const tables, slack = 3, 8
	if d := p.Bytes - size; d < -slack*tables*2 || d > slack*tables*2 {
		t.Errorf("payload of %d bytes, want %d", p.Bytes, size)
	}
	if len(p.Platforms) != len(payloadPlatforms) {
		t.Fatalf("%d platforms, want %d", len(p.Platforms), len(payloadPlatforms))
	}
	real, err := filepath.Glob(filepath.Join(root, "bytecode", "*.bpf.o"))
	if err != nil {
		t.Fatal(err)
	}
	amd64, arm64 := p.Platforms[0], p.Platforms[1]
	if len(amd64.Files) != len(real)+tables {
		t.Fatalf("%s: files %v, want bytecode/'s and %d table objects", amd64.Platform, amd64.Files, tables)
	}
	for _, name := range amd64.Files[len(real):] {
		a, err := os.ReadFile(filepath.Join(amd64.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(arm64.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if len(a) != len(b) || bytes.Equal(a, b) || amd64.Digests[name] == arm64.Digests[name] {
			t.Errorf("%s: the platforms' objects should differ in their bytes only", name)
		}
		spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(a))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(spec.Programs) != 1 {
			t.Errorf("%s: programs %v, want one", name, spec.Programs)
		}
		t.Run("load "+name, func(t *testing.T) {
			testutil.RequirePrivileged(t)
			coll, err := ebpf.NewCollection(spec)
			if err != nil {
				t.Fatal(err)
			}
			coll.Close()
		})
	}
}
