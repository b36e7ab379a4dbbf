package kerneltest

import (
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// XDP verdicts (enum xdp_action).
const (
	xdpDrop = 1
	xdpPass = 2
)

// TestFreplaceReplacesGlobalFunction loads freplace_target, whose global
// function decide() passes every packet, replaces decide() with the extension
// freplace_ext, which drops them, and back, running the target with
// BPF_PROG_TEST_RUN at each step.
func TestFreplaceReplacesGlobalFunction(t *testing.T) {
	testutil.RequireKernelFeature(t, testutil.FeatureFreplace)
	target := newCollection(t, loadSpec(t, "freplace_target")).Programs["freplace_target"]
	verdict := func(when string, want uint32) {
		t.Helper()
		got, err := target.Run(&ebpf.RunOptions{Data: make([]byte, 64)})
		if err != nil {
			t.Fatalf("run freplace_target %s: %v", when, err)
		}
		if got != want {
			t.Fatalf("freplace_target %s returned %d, want %d", when, got, want)
		}
	}
	verdict("before replacing decide", xdpPass)

	extSpec := loadSpec(t, "freplace_ext")
	extSpec.Programs["freplace_ext"].AttachTarget = target
	ext := newCollection(t, extSpec).Programs["freplace_ext"]
	l, err := link.AttachFreplace(target, extSpec.Programs["freplace_ext"].AttachTo, ext)
	if err != nil {
		t.Fatalf("attach freplace_ext: %v", err)
	}
	defer l.Close()
	verdict("with decide replaced", xdpDrop)

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	verdict("after detaching the extension", xdpPass)
}
