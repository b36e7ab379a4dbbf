package csi

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/protobuf/encoding/protojson"
	"k8s.io/apimachinery/pkg/util/validation"
)

// FuzzParsePublish feeds NodePublishVolume requests in protojson to the
// driver's request checks, seeded with testdata/bad/csi (its {{...}}
// variables stand for a pods directory holding one pod's volume directory).
// A request is refused with one line of ErrInvalid or ErrPrecondition, or
// accepted only for a target that is its own pod's CSI volume under the
// pods directory, one config (cluster-scoped, or a tenant config of the
// pod's own namespace), the pod's namespace and a group.
func FuzzParsePublish(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("..", "..", "testdata", "bad", "csi", "*.json"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("seeds in testdata/bad/csi: %v, %v", seeds, err)
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	podsDir := f.TempDir()
	staging := f.TempDir()
	target := podVolume(f, podsDir, testPodUID, "maps")
	vars := strings.NewReplacer("{{pods}}", podsDir, "{{staging}}", staging, "{{target}}", target,
		"{{pod.uid}}", testPodUID, "{{other.uid}}", "0b5f4c6e-0000-4b39-9a65-2f7d1f3c9e10")

	f.Fuzz(func(t *testing.T, data []byte) {
		req := &csi.NodePublishVolumeRequest{}
		if err := protojson.Unmarshal([]byte(vars.Replace(string(data))), req); err != nil {
			return
		}
		r, err := parsePublish(req, podsDir)
		if err != nil {
			if msg := err.Error(); strings.Contains(msg, "\n") {
				t.Errorf("error of more than one line: %q", msg)
			}
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrPrecondition) && !strings.HasPrefix(err.Error(), "target_path ") {
				t.Errorf("error %q is neither invalid nor a precondition", err)
			}
			return
		}
		rel, err := filepath.Rel(podsDir, r.target)
		parts := strings.Split(rel, "/")
		if err != nil || len(parts) != 5 || parts[0] != r.podUID || parts[1] != "volumes" || parts[2] != "kubernetes.io~csi" || parts[4] != "mount" {
			t.Errorf("accepted target %s for pod %s: not its CSI volume under %s", r.target, r.podUID, podsDir)
		}
		if r.config == "" || len(validation.IsDNS1123Label(r.namespace)) > 0 || req.GetVolumeCapability().GetMount().GetVolumeMountGroup() == "" {
			t.Errorf("accepted config %q, namespace %q, group %q", r.config, r.namespace, req.GetVolumeCapability().GetMount().GetVolumeMountGroup())
		}
		attrs := req.GetVolumeContext()
		_, cluster := attrs[AttrConfig]
		_, tenant := attrs[AttrTenantConfig]
		if cluster == tenant || r.tenant != tenant || (r.configNamespace() != "" && r.configNamespace() != attrs[PodNamespaceKey]) {
			t.Errorf("accepted config %q of namespace %q from attributes %v: a volume names config or tenantConfig, a tenant config is the pod's namespace's", r.config, r.configNamespace(), attrs)
		}
	})
}
