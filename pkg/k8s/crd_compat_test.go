package k8s_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/crdcompat"
	"github.com/bpfd-dev/bpfd/internal/testing/release"
)

// TestCRDsCompatibleWithPreviousRelease holds every CRD the previous
// release shipped to the rules of docs/kubernetes.md (API versions):
// served versions still served, the same storage version, no field removed
// or retyped, none newly required, no validation tightened. A change it
// refuses comes in a new version served beside the old one, with
// conversion and a storage migration. CRDs added since are new and free.
func TestCRDsCompatibleWithPreviousRelease(t *testing.T) {
	root := release.RepoRoot(t)
	files := release.Files(t, release.Previous, "config/crd/bases")
	if len(files) == 0 {
		t.Fatalf("no CRDs in config/crd/bases at %s", release.Previous)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			prev, err := crdcompat.Parse(release.Source(t, release.Previous, file))
			if err != nil {
				t.Fatalf("%s at %s: %v", file, release.Previous, err)
			}
			b, err := os.ReadFile(filepath.Join(root, file))
			if err != nil {
				t.Fatalf("a CRD of %s is gone: %v", release.Previous, err)
			}
			cur, err := crdcompat.Parse(b)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			for _, p := range crdcompat.Breaking(prev, cur) {
				if why, ok := reviewedChanges[p]; ok {
					t.Logf("reviewed, compatible: %s (%s)", p, why)
					continue
				}
				t.Errorf("breaks objects or clients of %s: %s", release.Previous, p)
			}
			var versions []string
			for _, v := range cur.Spec.Versions {
				versions = append(versions, v.Name)
			}
			t.Logf("%s: versions %s", cur.Name, strings.Join(versions, ", "))
		})
	}
}

// reviewedChanges are changes the rules above flag that were reviewed and
// hold for every object the previous release accepted, each with why. Keep
// it short: every entry is a promise a reviewer made by reading the rule.
var reviewedChanges = map[string]string{
	`v1alpha1.spec.programs[]: new validation rule "has(self.rawTracepoint) == (self.type in ['raw_tracepoint', 'tp_btf'])"`: "rawTracepoint and the types raw_tracepoint and tp_btf are new: " +
		"every program v0.1.0 accepted has neither, so the rule holds for it",
}
