package testutil

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// RequireKernelEnv names the environment variable that says which kernel the
// tests run on, as a key of the kernel profiles below (e.g. "debian-6.1"). A
// test needing a feature that kernel has then fails instead of skipping when
// the feature is missing. `make test-vm` sets it inside the VM.
const RequireKernelEnv = "BPFD_REQUIRE_KERNEL"

// KernelFeature is something a test needs from the running kernel beyond
// loading BPF programs, probed by actually using it once per test process.
type KernelFeature string

const (
	// FeatureKprobe is attaching a kprobe program to a kernel function
	// (CONFIG_KPROBES with the kprobe PMU or tracefs kprobe_events).
	FeatureKprobe KernelFeature = "kprobe"
	// FeatureKretprobe is attaching a kprobe program to a kernel function's
	// return (CONFIG_KRETPROBES).
	FeatureKretprobe KernelFeature = "kretprobe"
	// FeatureFentry is attaching a tracing program at a kernel function's
	// entry through a BPF trampoline (BTF of vmlinux, direct-call ftrace).
	FeatureFentry KernelFeature = "fentry"
	// FeatureFexit is attaching a tracing program at a kernel function's exit
	// through a BPF trampoline.
	FeatureFexit KernelFeature = "fexit"
	// FeatureFreplace is loading an extension program that replaces a global
	// function of a loaded program (Linux 5.6).
	FeatureFreplace KernelFeature = "freplace"
	// FeatureXDPLink is attaching XDP through a bpf_link (Linux 5.9).
	FeatureXDPLink KernelFeature = "xdp-link"
	// FeatureTCX is attaching TC programs through TCX links (Linux 6.6).
	FeatureTCX KernelFeature = "tcx"
)

// KernelFeatures lists every feature RequireKernelFeature knows.
var KernelFeatures = []KernelFeature{
	FeatureKprobe, FeatureKretprobe, FeatureFentry, FeatureFexit, FeatureFreplace, FeatureXDPLink, FeatureTCX,
}

// kernelProfile is what a known kernel must offer.
type kernelProfile struct {
	// release is the prefix of the running kernel's release (uname -r).
	release string
	// features are those the kernel has; a test needing one fails when its
	// probe says it is missing.
	features []KernelFeature
}

// kernelProfiles are the kernels BPFD_REQUIRE_KERNEL may name.
var kernelProfiles = map[string]kernelProfile{
	// Debian 12's stock kernel, booted by hack/vm: kprobes and kretprobes
	// (CONFIG_KPROBES, CONFIG_KRETPROBES), BPF trampolines for fentry/fexit
	// (CONFIG_DEBUG_INFO_BTF, CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS),
	// extension programs and XDP links. It predates TCX (6.6) and has no
	// kprobe_multi links (CONFIG_FPROBE is off).
	"debian-6.1": {
		release:  "6.1.",
		features: []KernelFeature{FeatureKprobe, FeatureKretprobe, FeatureFentry, FeatureFexit, FeatureFreplace, FeatureXDPLink},
	},
}

// RequireKernelFeature skips tb, with the reason, unless the running kernel
// has feature. It fails tb instead when BPFD_REQUIRE_KERNEL names a kernel
// that has the feature, when it names an unknown kernel or when the running
// kernel is not the one it names. Probing needs privileges, so it first
// applies RequirePrivileged. Each feature is probed once per process.
func RequireKernelFeature(tb testing.TB, feature KernelFeature) {
	tb.Helper()
	RequirePrivileged(tb)
	probe, ok := kernelProbes[feature]
	if !ok {
		tb.Fatalf("unknown kernel feature %q", feature)
	}
	g := kernelGate(feature, probe(), os.Getenv(RequireKernelEnv), kernelRelease())
	switch g.verdict {
	case gateFail:
		tb.Fatal(g.reason)
	case gateSkip:
		tb.Skip(g.reason)
	}
}

// KernelHas reports whether the running kernel has feature: nil when it has,
// the error that showed otherwise. Tests of what happens on kernels without a
// feature skip themselves when it returns nil. It needs privileges.
func KernelHas(feature KernelFeature) error {
	probe, ok := kernelProbes[feature]
	if !ok {
		return fmt.Errorf("unknown kernel feature %q", feature)
	}
	return probe()
}

type gateVerdict int

const (
	gateRun gateVerdict = iota
	gateSkip
	gateFail
)

// gate is what RequireKernelFeature does, and why.
type gate struct {
	verdict gateVerdict
	reason  string
}

// kernelGate decides what a test needing feature does, given the feature's
// probe result, the value of BPFD_REQUIRE_KERNEL and the running release.
func kernelGate(feature KernelFeature, probeErr error, requiredKernel, release string) gate {
	if requiredKernel != "" && requiredKernel != "0" {
		profile, ok := kernelProfiles[requiredKernel]
		if !ok {
			return gate{gateFail, fmt.Sprintf("%s=%s: unknown kernel (known: %s)", RequireKernelEnv, requiredKernel, strings.Join(knownKernels(), ", "))}
		}
		if !strings.HasPrefix(release, profile.release) {
			return gate{gateFail, fmt.Sprintf("%s=%s: running kernel %s is not %s*", RequireKernelEnv, requiredKernel, release, profile.release)}
		}
		if probeErr != nil && slices.Contains(profile.features, feature) {
			return gate{gateFail, fmt.Sprintf("kernel %s lacks %s, which %s=%s requires: %v", release, feature, RequireKernelEnv, requiredKernel, probeErr)}
		}
	}
	if probeErr != nil {
		return gate{gateSkip, fmt.Sprintf("kernel %s lacks %s: %v", release, feature, probeErr)}
	}
	return gate{verdict: gateRun}
}

func knownKernels() []string {
	var names []string
	for name := range kernelProfiles {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// kernelRelease returns the running kernel's release, as uname -r prints it.
func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "(unknown: " + err.Error() + ")"
	}
	return unix.ByteSliceToString(u.Release[:])
}
