package kerneltest

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/cilium/ebpf/link"
)

// TestFentryCountsUnlinkat attaches fentry_counter's fentry and fexit programs
// to the kernel's do_unlinkat through BPF trampolines, removes files and reads
// the counts.
func TestFentryCountsUnlinkat(t *testing.T) {
	testutil.RequireKernelFeature(t, testutil.FeatureFentry)
	testutil.RequireKernelFeature(t, testutil.FeatureFexit)
	coll := newCollection(t, loadSpec(t, "fentry_counter"))
	for _, name := range []string{"fentry_counter", "fexit_counter"} {
		l, err := link.AttachTracing(link.TracingOptions{Program: coll.Programs[name]})
		if err != nil {
			t.Fatalf("attach %s: %v", name, err)
		}
		defer l.Close()
	}

	const n = 20
	dir := t.TempDir()
	for i := range n {
		f := filepath.Join(dir, strconv.Itoa(i))
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	calls := coll.Maps["unlinkat_calls"]
	if entries, exits := counter(t, calls, 0), counter(t, calls, 1); entries < n || exits < n {
		t.Fatalf("after removing %d files: %d entries, %d exits of do_unlinkat counted", n, entries, exits)
	}
}
