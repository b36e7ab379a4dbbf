package kerneltest

import (
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// TestKernelFeatures probes every feature the test gates know. On the host it
// shows which ones this kernel lacks; under BPFD_REQUIRE_KERNEL it fails when
// the named kernel lacks one it is documented to have.
func TestKernelFeatures(t *testing.T) {
	for _, f := range testutil.KernelFeatures {
		t.Run(string(f), func(t *testing.T) {
			testutil.RequireKernelFeature(t, f)
		})
	}
}
