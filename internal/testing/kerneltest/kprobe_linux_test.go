package kerneltest

import (
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// TestKprobeCountsGetpid attaches kprobe_counter's kprobe and kretprobe to
// getpid(2), calls it and reads the counts; after detaching they stay put.
func TestKprobeCountsGetpid(t *testing.T) {
	testutil.RequireKernelFeature(t, testutil.FeatureKprobe)
	testutil.RequireKernelFeature(t, testutil.FeatureKretprobe)
	spec := loadSpec(t, "kprobe_counter")
	coll := newCollection(t, spec)
	calls := coll.Maps["kprobe_calls"]

	entry, err := link.Kprobe(spec.Programs["kprobe_counter"].AttachTo, coll.Programs["kprobe_counter"], nil)
	if err != nil {
		t.Fatalf("attach kprobe: %v", err)
	}
	defer entry.Close()
	exit, err := link.Kretprobe(spec.Programs["kretprobe_counter"].AttachTo, coll.Programs["kretprobe_counter"], nil)
	if err != nil {
		t.Fatalf("attach kretprobe: %v", err)
	}
	defer exit.Close()

	const n = 100
	for range n {
		unix.Getpid()
	}
	entries, returns := counter(t, calls, 0), counter(t, calls, 1)
	if entries < n || returns < n {
		t.Fatalf("after %d getpid calls: %d entries, %d returns counted", n, entries, returns)
	}

	if err := entry.Close(); err != nil {
		t.Fatal(err)
	}
	if err := exit.Close(); err != nil {
		t.Fatal(err)
	}
	entries, returns = counter(t, calls, 0), counter(t, calls, 1)
	unix.Getpid()
	if e, r := counter(t, calls, 0), counter(t, calls, 1); e != entries || r != returns {
		t.Fatalf("counted getpid after detaching: entries %d -> %d, returns %d -> %d", entries, e, returns, r)
	}
}
