package k8s_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

// TestPrinterColumns shows `kubectl get bpfprogramconfigs,bpfprograms` on
// a config one node loaded and one refused.
func TestPrinterColumns(t *testing.T) {
	ctx := context.Background()
	cfg := &v1alpha1.BpfProgramConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "xdp-counter"},
		Spec: v1alpha1.BpfProgramConfigSpec{
			Bytecode: v1alpha1.BytecodeImage{Image: "registry.example.com/bpfd/xdp_counter@sha256:" + strings.Repeat("a", 64)},
			Programs: []v1alpha1.Program{{Name: "xdp_counter", Type: "xdp", XDP: &v1alpha1.XDPAttach{
				InterfaceSelector: v1alpha1.InterfaceSelector{PrimaryNodeInterface: true}}}},
		},
	}
	if err := testEnv.Client.Create(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testEnv.Client.Delete(ctx, cfg) })
	cfg.Status = v1alpha1.BpfProgramConfigStatus{NodesSelected: 2, NodesLoaded: 1, NodesFailed: 1}
	meta.SetStatusCondition(&cfg.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonNodesFailed})
	if err := testEnv.Client.Status().Update(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	for node, ready := range map[string]metav1.Condition{
		"worker-1": {Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonLoaded},
		"worker-2": {Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonPolicyDenied},
	} {
		bp := &v1alpha1.BpfProgram{
			ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.BpfProgramName(cfg.Name, node)},
			Spec:       v1alpha1.BpfProgramSpec{NodeName: node, ConfigName: cfg.Name},
		}
		if err := testEnv.Client.Create(ctx, bp); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { testEnv.Client.Delete(ctx, bp) })
		bp.Status.Conditions = []metav1.Condition{ready}
		bp.Status.Conditions[0].LastTransitionTime = metav1.Now()
		if ready.Status == metav1.ConditionTrue {
			bp.Status.Digest = "sha256:" + strings.Repeat("a", 64)
			bp.Status.Signer = "SHA256:test-signer"
		}
		if err := testEnv.Client.Status().Update(ctx, bp); err != nil {
			t.Fatal(err)
		}
	}

	out, err := exec.Command(filepath.Join(testEnv.Assets, "kubectl"), "--kubeconfig", testEnv.Kubeconfig(t),
		"get", "bpfprogramconfigs,bpfprograms").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get: %v\n%s", err, out)
	}
	t.Logf("kubectl get bpfprogramconfigs,bpfprograms:\n%s", out)
	// Columns are compared field by field: their widths follow the names.
	var rows [][]string
	for _, line := range strings.Split(string(out), "\n") {
		rows = append(rows, strings.Fields(line))
	}
	for _, want := range [][]string{
		{"NAME", "READY", "REASON", "SELECTED", "LOADED", "FAILED", "AGE"},
		{"bpfprogramconfig.bpfd.io/xdp-counter", "False", "NodesFailed", "2", "1", "1"},
		{"NAME", "NODE", "CONFIG", "READY", "REASON", "AGE"},
		{"bpfprogram.bpfd.io/" + v1alpha1.BpfProgramName("xdp-counter", "worker-1"), "worker-1", "xdp-counter", "True", "Loaded"},
		{"bpfprogram.bpfd.io/" + v1alpha1.BpfProgramName("xdp-counter", "worker-2"), "worker-2", "xdp-counter", "False", "PolicyDenied"},
	} {
		if !slices.ContainsFunc(rows, func(r []string) bool { return len(r) >= len(want) && slices.Equal(r[:len(want)], want) }) {
			t.Errorf("kubectl get lacks a row %q", want)
		}
	}
}

// TestBpfNodeColumns shows `kubectl get bpfnodes` with a node's counts and
// last change, and the CRD's checks of a BpfNode's name.
func TestBpfNodeColumns(t *testing.T) {
	ctx := context.Background()
	bn := &v1alpha1.BpfNode{ObjectMeta: metav1.ObjectMeta{Name: "worker-9"}, Spec: v1alpha1.BpfNodeSpec{NodeName: "worker-9"}}
	if err := testEnv.Client.Create(ctx, bn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testEnv.Client.Delete(ctx, bn) })
	bn.Status = v1alpha1.BpfNodeStatus{ManagedPrograms: 3, UnmanagedPrograms: 12, LastChange: &metav1.Time{Time: time.Now().Add(-15 * time.Minute)}, HolderSource: "iterator"}
	if err := testEnv.Client.Status().Update(ctx, bn); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(testEnv.Assets, "kubectl"), "--kubeconfig", testEnv.Kubeconfig(t), "get", "bpfnodes").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get: %v\n%s", err, out)
	}
	t.Logf("kubectl get bpfnodes:\n%s", out)
	var rows [][]string
	for _, line := range strings.Split(string(out), "\n") {
		rows = append(rows, strings.Fields(line))
	}
	for _, want := range [][]string{
		{"NAME", "MANAGED", "UNMANAGED", "CHANGED", "AGE"},
		{"worker-9", "3", "12", "15m"},
	} {
		if !slices.ContainsFunc(rows, func(r []string) bool { return len(r) >= len(want) && slices.Equal(r[:len(want)], want) }) {
			t.Errorf("kubectl get lacks a row %q", want)
		}
	}

	// A BpfNode is named after its node, which cannot change.
	wrong := &v1alpha1.BpfNode{ObjectMeta: metav1.ObjectMeta{Name: "worker-8"}, Spec: v1alpha1.BpfNodeSpec{NodeName: "worker-7"}}
	if err := testEnv.Client.Create(ctx, wrong); err == nil || !strings.Contains(err.Error(), "named after its node") {
		t.Errorf("create a BpfNode named after another node: %v, want refused", err)
	}
	bn.Spec.NodeName = "worker-10"
	if err := testEnv.Client.Update(ctx, bn); err == nil || !strings.Contains(err.Error(), "immutable") {
		t.Errorf("rename a BpfNode's node: %v, want refused", err)
	}
}
