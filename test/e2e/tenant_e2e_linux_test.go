package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/bpfd-dev/bpfd/internal/testing/k8stest"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

// tenantNamespace is the tenant of the end-to-end test; the node's trust
// policy admits it for the bpfd/tenants/ repositories.
const tenantNamespace = "e2e-tenant"

// testTenant applies, as the cluster's administrator would, the grant
// sample and, in the tenant's namespace, the tenant TCX sample selecting a
// pod on the node: bpfd-agent (its binary, as the DaemonSet runs it) loads
// it in the pod's network namespace, bpfd-operator sums up the node's
// BpfTenantProgram, the program counts the pod's traffic, and kubectl
// delete unloads it.
func (c *cluster) testTenant(t *testing.T) {
	ctx := context.Background()
	if err := testEnv.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tenantNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Logf("kubectl apply -f tenant_grant.yaml:\n%s", kubectl(t, c.admin, "apply", "-f", filepath.Join(testEnv.Root, "config", "samples", "tenant_grant.yaml")))
	pod := startPod(t, tenantNamespace, "web", c.node, map[string]string{"app": "web"})

	data, err := os.ReadFile(filepath.Join(testEnv.Root, "config", "samples", "tenant_tcx.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &v1alpha1.BpfTenantProgramConfig{}
	if err := yaml.UnmarshalStrict(data, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Spec.Bytecode.Image = c.images["tenant"]
	cfg.Spec.Programs[0].TCX.InterfaceSelector.Interfaces = []string{pod.veth.Peer}
	out, err := yaml.Marshal(map[string]any{"apiVersion": cfg.APIVersion, "kind": cfg.Kind,
		"metadata": map[string]any{"name": cfg.Name}, "spec": cfg.Spec})
	if err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(tempDir(t), "tenant_tcx.yaml")
	if err := os.WriteFile(manifest, out, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("kubectl -n %s apply -f tenant_tcx.yaml:\n%s", tenantNamespace, kubectl(t, c.admin, "-n", tenantNamespace, "apply", "-f", manifest))
	key := client.ObjectKey{Namespace: tenantNamespace, Name: cfg.Name}
	t.Cleanup(func() {
		testEnv.Client.Delete(context.Background(), &v1alpha1.BpfTenantProgramConfig{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}})
	})

	k8stest.Eventually(t, timeout, func() error {
		if err := testEnv.Client.Get(ctx, key, cfg); err != nil {
			return err
		}
		ready := meta.FindStatusCondition(cfg.Status.Conditions, v1alpha1.ConditionReady)
		if cfg.Status.ObservedGeneration != cfg.Generation || ready == nil || ready.Reason != v1alpha1.ReasonAllNodesLoaded {
			return fmt.Errorf("tenant config %s: Ready %+v, want %s", key, ready, v1alpha1.ReasonAllNodesLoaded)
		}
		return nil
	})
	btp := &v1alpha1.BpfTenantProgram{}
	if err := testEnv.Client.Get(ctx, client.ObjectKey{Namespace: tenantNamespace, Name: v1alpha1.BpfProgramName(cfg.Name, c.node)}, btp); err != nil {
		t.Fatal(err)
	}
	if len(btp.Status.Programs) != 1 || btp.Status.Programs[0].Pod != "web" || btp.Status.Rule != "tenants" {
		t.Fatalf("BpfTenantProgram status: rule %q, programs %+v; want rule tenants, one program in pod web", btp.Status.Rule, btp.Status.Programs)
	}
	pin := mapNamed(t, btp.Status.Programs[0], "tc_stats").PinPath
	pod.veth.SendUDP(t, 10)
	waitCount(t, pin, 10)
	if got := testutil.ReadU64(t, pin, udp); got != 10 {
		t.Errorf("the tenant's counter counts %d UDP packets, want its pod's 10", got)
	}

	t.Logf("kubectl -n %s delete -f tenant_tcx.yaml:\n%s", tenantNamespace, kubectl(t, c.admin, "-n", tenantNamespace, "delete", "-f", manifest))
	testEnv.WaitGone(t, timeout, cfg)
	if _, err := os.Stat(pin); !os.IsNotExist(err) {
		t.Errorf("the tenant's map pin %s after delete: %v", pin, err)
	}
}
