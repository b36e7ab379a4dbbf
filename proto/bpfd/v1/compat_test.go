package bpfdv1_test

import (
	"os"
	"testing"
	"time"

	"github.com/bpfd-dev/bpfd/internal/testing/protocompat"
	"github.com/bpfd-dev/bpfd/internal/testing/release"
)

// TestCompatibleWithPreviousRelease holds bpfd.proto to the rules of
// docs/daemon.md (the API section) against the file as the previous
// release tagged it: every client built from that release's API keeps
// working with this one. A change the check refuses is a new package
// version, bpfd.v2, beside bpfd.v1.
func TestCompatibleWithPreviousRelease(t *testing.T) {
	start := time.Now()
	prevSrc := release.Source(t, release.Previous, "proto/bpfd/v1/bpfd.proto")
	curSrc, err := os.ReadFile("bpfd.proto")
	if err != nil {
		t.Fatal(err)
	}
	prev, err := protocompat.Compile("bpfd/v1/bpfd.proto", prevSrc)
	if err != nil {
		t.Fatalf("%s: %v", release.Previous, err)
	}
	cur, err := protocompat.Compile("bpfd/v1/bpfd.proto", curSrc)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range protocompat.Breaking(prev, cur) {
		t.Errorf("breaks clients of %s: %s", release.Previous, p)
	}
	t.Logf("added since %s: %s", release.Previous, protocompat.Summary(prev, cur))
	t.Logf("checked in %s", time.Since(start).Round(time.Millisecond))
}
