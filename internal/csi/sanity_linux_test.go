package csi_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"
)

// sanitySkipped are the csi-sanity tests that do not apply to a node-only
// driver: every test of the controller and group controller services
// (csi.bpfd.io has neither: the kubelet calls the node service alone for
// ephemeral inline volumes), and the node test that first creates a volume
// through the controller service's CreateVolume.
var sanitySkipped = []string{
	`\[Controller Server\]`,
	`\[GroupController Server\]`,
	`\[GroupController VolumeGroupSnapshots\]`,
	`Node Service NodeUnpublishVolume should remove target path`,
}

// TestSanity runs the CSI community's conformance tests (csi-sanity, from
// kubernetes-csi/csi-test) against the driver served on a unix socket.
func TestSanity(t *testing.T) {
	n := newNode(t)
	cfg := sanity.NewTestConfig()
	cfg.Address = n.sock
	dir := t.TempDir()
	cfg.TargetPath = filepath.Join(dir, "target")
	cfg.StagingPath = filepath.Join(dir, "staging")

	suite, reporter := ginkgo.GinkgoConfiguration()
	suite.SkipStrings = sanitySkipped
	reporter.Succinct = !testing.Verbose()
	reporter.NoColor = true
	sc := sanity.GinkgoTest(&cfg)
	var passed []string
	ginkgo.ReportAfterSuite("passed specs", func(r ginkgo.Report) {
		for _, s := range r.SpecReports {
			if s.State == types.SpecStatePassed {
				passed = append(passed, s.FullText())
			}
		}
	})
	gomega.RegisterFailHandler(ginkgo.Fail)
	ginkgo.RunSpecs(t, "csi-sanity against csi.bpfd.io", suite, reporter)
	sc.Finalize()
	// Every identity test and the node tests a node-only driver answers
	// (capabilities, info, refusals of incomplete requests).
	if len(passed) < minSanityPassed {
		t.Errorf("%d csi-sanity tests passed, want at least %d: %q", len(passed), minSanityPassed, passed)
	}
	t.Logf("csi-sanity: %d passed:\n%s", len(passed), strings.Join(passed, "\n"))
}

// minSanityPassed is how many csi-sanity tests apply to the driver (v5.6.0):
// GetPluginCapabilities, Probe, GetPluginInfo, NodeGetCapabilities,
// NodeGetInfo, and NodePublishVolume (3) and NodeUnpublishVolume (2)
// without a required field.
const minSanityPassed = 10
