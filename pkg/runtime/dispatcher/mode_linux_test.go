package dispatcher_test

import (
	"errors"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// TestResolveMode: auto picks freplace exactly where the probe finds
// extension programs working, and forcing freplace elsewhere fails.
func TestResolveMode(t *testing.T) {
	testutil.RequirePrivileged(t)
	probe := dispatcher.ProbeFreplace()
	t.Logf("ProbeFreplace: %v", probe)
	auto, err := dispatcher.ResolveMode(dispatcher.ModeAuto)
	if err != nil {
		t.Fatal(err)
	}
	forced, forcedErr := dispatcher.ResolveMode(dispatcher.ModeFreplace)
	switch {
	case probe == nil && (auto != dispatcher.ModeFreplace || forced != dispatcher.ModeFreplace || forcedErr != nil):
		t.Errorf("freplace works, but auto resolves to %q and freplace to %q, %v", auto, forced, forcedErr)
	case probe != nil && (!errors.Is(probe, dispatcher.ErrUnsupported) || auto != dispatcher.ModeLinked || !errors.Is(forcedErr, dispatcher.ErrUnsupported)):
		t.Errorf("freplace fails (%v), but auto resolves to %q and freplace to %q, %v", probe, auto, forced, forcedErr)
	}
	if m, err := dispatcher.ResolveMode(dispatcher.ModeLinked); m != dispatcher.ModeLinked || err != nil {
		t.Errorf("ResolveMode(linked) = %q, %v", m, err)
	}

	// Where the kernel must have freplace (the test VM), the probe must
	// find it.
	t.Run("freplace available", func(t *testing.T) {
		testutil.RequireKernelFeature(t, testutil.FeatureFreplace)
		if probe != nil {
			t.Fatalf("ProbeFreplace: %v", probe)
		}
	})
}
