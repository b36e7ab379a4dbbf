package bpfdv1_test

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bpfd-dev/bpfd/internal/testing/protocompat"
	"github.com/bpfd-dev/bpfd/internal/testing/release"
)

// TestCompatibleWithPreviousRelease holds bpfd.proto to the rules of
// docs/daemon.md (the API section) against the file as the previous
// release tagged it: every client built from that release's API keeps
// working with this one. A change the check refuses is a new package
// version, bpfd.v2, beside bpfd.v1. Each version's bpfd.proto is compiled
// with the other .proto files of its proto/bpfd/v1, which it may import.
func TestCompatibleWithPreviousRelease(t *testing.T) {
	start := time.Now()
	const name = "bpfd/v1/bpfd.proto"
	prevSrcs := map[string][]byte{}
	for _, f := range release.Files(t, release.Previous, "proto/bpfd/v1") {
		if strings.HasSuffix(f, ".proto") {
			prevSrcs["bpfd/v1/"+path.Base(f)] = release.Source(t, release.Previous, f)
		}
	}
	curFiles, err := filepath.Glob("*.proto")
	if err != nil {
		t.Fatal(err)
	}
	curSrcs := map[string][]byte{}
	for _, f := range curFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		curSrcs["bpfd/v1/"+f] = b
	}
	prev, err := protocompat.CompileWith(name, prevSrcs)
	if err != nil {
		t.Fatalf("%s: %v", release.Previous, err)
	}
	cur, err := protocompat.CompileWith(name, curSrcs)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range protocompat.Breaking(prev, cur) {
		t.Errorf("breaks clients of %s: %s", release.Previous, p)
	}
	t.Logf("added since %s: %s", release.Previous, protocompat.Summary(prev, cur))
	t.Logf("checked in %s", time.Since(start).Round(time.Millisecond))
}
