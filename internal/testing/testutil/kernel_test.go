package testutil

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestKernelGate(t *testing.T) {
	missing := errors.New("operation not permitted")
	cases := map[string]struct {
		feature  KernelFeature
		probeErr error
		required string
		release  string
		want     gate
	}{
		"present": {
			feature: FeatureKprobe, release: "6.18.44",
			want: gate{verdict: gateRun},
		},
		"missing skips": {
			feature: FeatureFentry, probeErr: missing, release: "6.18.44",
			want: gate{gateSkip, "kernel 6.18.44 lacks fentry: operation not permitted"},
		},
		"missing skips when required is 0": {
			feature: FeatureFentry, probeErr: missing, required: "0", release: "6.18.44",
			want: gate{gateSkip, "kernel 6.18.44 lacks fentry: operation not permitted"},
		},
		"present on the required kernel": {
			feature: FeatureFreplace, required: "debian-6.1", release: "6.1.0-56-amd64",
			want: gate{verdict: gateRun},
		},
		"missing on the required kernel fails": {
			feature: FeatureFreplace, probeErr: missing, required: "debian-6.1", release: "6.1.0-56-amd64",
			want: gate{gateFail, "kernel 6.1.0-56-amd64 lacks freplace, which BPFD_REQUIRE_KERNEL=debian-6.1 requires: operation not permitted"},
		},
		"missing but not expected of the required kernel skips": {
			feature: FeatureTCX, probeErr: missing, required: "debian-6.1", release: "6.1.0-56-amd64",
			want: gate{gateSkip, "kernel 6.1.0-56-amd64 lacks tcx: operation not permitted"},
		},
		"unknown required kernel fails": {
			feature: FeatureKprobe, required: "fedora-40", release: "6.8.5",
			want: gate{gateFail, "BPFD_REQUIRE_KERNEL=fedora-40: unknown kernel (known: debian-6.1)"},
		},
		"another kernel than the required one fails": {
			feature: FeatureKprobe, required: "debian-6.1", release: "6.18.44",
			want: gate{gateFail, "BPFD_REQUIRE_KERNEL=debian-6.1: running kernel 6.18.44 is not 6.1.*"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := kernelGate(tc.feature, tc.probeErr, tc.required, tc.release)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(gate{})); diff != "" {
				t.Errorf("kernelGate() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKernelFeaturesHaveProbes(t *testing.T) {
	for _, f := range KernelFeatures {
		if kernelProbes[f] == nil {
			t.Errorf("feature %s has no probe", f)
		}
	}
	if len(kernelProbes) != len(KernelFeatures) {
		t.Errorf("%d probes for %d features", len(kernelProbes), len(KernelFeatures))
	}
	for name, p := range kernelProfiles {
		for _, f := range p.features {
			if kernelProbes[f] == nil {
				t.Errorf("kernel %s requires unknown feature %s", name, f)
			}
		}
	}
}
