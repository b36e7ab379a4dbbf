package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/operator"
)

// testMustGather runs hack/must-gather/gather against the cluster as its
// administrator, with the node's support bundle made by this tree's bpfctl
// against the node's bpfd (in a cluster: kubectl exec into the bpfd
// container). The DaemonSet's pod is recorded in the API as the kubelet
// would. The output has an index naming every file, the CRs and the
// namespace's objects, the node's bundle (a gzip tar with its own index and
// bpfd's programs), one archive of it all, and nowhere the registry
// credentials of the Secret bpfd-config names.
func (c *cluster) testMustGather(t *testing.T) {
	ctx := context.Background()
	ds := c.waitDaemonSet(t)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "bpfd-mustgather", Labels: ds.Spec.Template.Labels},
		Spec:       *ds.Spec.Template.Spec.DeepCopy(),
	}
	pod.Spec.NodeName = c.node
	if err := testEnv.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testEnv.Client.Delete(ctx, pod) })

	bins := buildCommands(t, "bpfctl")
	bpfd := container(t, c.pod, "bpfd")
	out := t.TempDir()
	cmd := exec.Command(filepath.Join(testEnv.Root, "hack", "must-gather", "gather"))
	cmd.Env = append(os.Environ(),
		"MUST_GATHER_DIR="+out, "ARCHIVE=1",
		"KUBECTL="+filepath.Join(testEnv.Assets, "kubectl"), "KUBECONFIG="+c.admin,
		fmt.Sprintf("NODE_BUNDLE=%s --socket %s support-bundle -f - --config /dev/null --policy %s --metrics-address %s --log-file /dev/null",
			filepath.Join(bins, "bpfctl"), c.pod.hostPath(t, bpfd, operator.SocketPath), c.pod.hostPath(t, bpfd, operator.TrustPolicyFile), c.metricsAddr),
	)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gather: %v\n%s", err, b)
	}
	index, err := os.ReadFile(filepath.Join(out, "bpfd", "index.txt"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("index.txt:\n%s", index)
	nodeBundle := "nodes/" + c.node + "/support-bundle.tar.gz"
	for _, f := range []string{"cluster/bpfprogramconfigs.yaml", "cluster/bpfprograms.yaml", "cluster/bpfnodes.yaml", "cluster/crd-bpfprogramconfigs.bpfd.io.yaml",
		"cluster/nodes.yaml", "cluster/clusterroles.yaml", "namespace/daemonsets.yaml", "namespace/configmaps.yaml", "namespace/pods.yaml", "namespace/events.yaml", nodeBundle} {
		if !strings.Contains(string(index), "\n"+f+"\t") {
			t.Errorf("index.txt does not list %s", f)
		}
		if _, err := os.Stat(filepath.Join(out, "bpfd", f)); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(string(index), "logs/bpfd-mustgather/bpfd.log: ") {
		t.Errorf("index.txt does not say the bpfd container's log could not be had (no kubelet here)")
	}

	// The password, the auth field, and the Secret's data as the API
	// serves it (the whole config file in base64).
	secrets := []string{"e2e-secret", base64.StdEncoding.EncodeToString([]byte("bpfd:e2e-secret")), base64.StdEncoding.EncodeToString(c.registryCredentials())}
	check := func(name string, b []byte) {
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds the registry credentials (%q)", name, s)
			}
		}
		if bytes.Contains(b, []byte("kind: Secret\n")) {
			t.Errorf("%s holds a Secret", name)
		}
	}
	filepath.WalkDir(out, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		check(path, b)
		if strings.HasSuffix(path, ".tar.gz") {
			for name, content := range untarGz(t, b) {
				check(path+":"+name, content)
				if strings.HasSuffix(name, ".tar.gz") {
					for inner, content := range untarGz(t, content) {
						check(path+":"+name+":"+inner, content)
					}
				}
			}
		}
		return nil
	})

	bundle := untarGz(t, must(os.ReadFile(filepath.Join(out, "bpfd", nodeBundle))))
	if !bytes.Contains(bundle["bpfd-support/index.json"], []byte(`"kind": "SupportBundle"`)) || !bytes.Contains(bundle["bpfd-support/programs.json"], []byte(`"programs"`)) {
		t.Errorf("the node's support bundle lacks its index or programs: %v", keys(bundle))
	}
	all := untarGz(t, must(os.ReadFile(filepath.Join(out, "bpfd-must-gather.tar.gz"))))
	if _, ok := all["bpfd/index.txt"]; !ok {
		t.Errorf("the archive has no index: %v", keys(all))
	}
}

func untarGz(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			files[h.Name] = must(io.ReadAll(tr))
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func keys(m map[string][]byte) []string {
	var k []string
	for name := range m {
		k = append(k, name)
	}
	return k
}
