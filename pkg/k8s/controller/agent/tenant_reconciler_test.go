package agent_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/bpfd-dev/bpfd/internal/testing/k8stest"
	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/agent"
)

// startTenantAgent starts node nodeName's tenant reconciler, its writes
// counted. The node's /proc is scanned for pods' processes.
func startTenantAgent(t *testing.T, nodeName string, opts agent.ReconcilerOptions) *nodeAgent {
	t.Helper()
	n := &nodeAgent{name: nodeName, daemon: k8stest.StartDaemon(t)}
	dc, err := agent.DialDaemon(n.daemon.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dc.Close() })
	testEnv.StartManager(t, ctrl.Options{Cache: agent.CacheOptions(nodeName)}, func(mgr ctrl.Manager) error {
		n.writes = k8stest.CountWrites(mgr.GetClient())
		return agent.NewTenantReconciler(n.writes, dc, nodeName, agent.ProcScanner{ProcDir: "/proc"}, opts).SetupWithManager(mgr)
	})
	return n
}

// createTenantConfig creates, in a namespace of its own, a tenant config of
// one TCX program on eth0 in the pods labelled app=<name> of the nodes
// labelled test=<selector>, holding the node finalizers of nodes.
func createTenantConfig(t *testing.T, name, selector string, nodes ...string) *v1alpha1.BpfTenantProgramConfig {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := testEnv.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	cfg := &v1alpha1.BpfTenantProgramConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name},
		Spec: v1alpha1.BpfTenantProgramConfigSpec{
			Bytecode: v1alpha1.BytecodeImage{Image: "registry.example.com/bpfd/tcx_counter" + digestA},
			Programs: []v1alpha1.TenantProgram{{Name: "tcx_counter", Type: v1alpha1.ProgramTypeTCX, TCX: &v1alpha1.TCXAttach{
				InterfaceSelector: v1alpha1.InterfaceSelector{Interfaces: []string{"eth0"}}, Direction: v1alpha1.Ingress,
			}}},
			PodSelector:  v1alpha1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			NodeSelector: v1alpha1.LabelSelector{MatchLabels: map[string]string{"test": selector}},
		},
	}
	for _, n := range nodes {
		cfg.Finalizers = append(cfg.Finalizers, v1alpha1.NodeFinalizer(n))
	}
	if err := testEnv.Client.Create(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := testEnv.Client.Get(ctx, client.ObjectKeyFromObject(cfg), cfg); err == nil {
			cfg.Finalizers = nil
			testEnv.Client.Update(ctx, cfg)
			testEnv.Client.Delete(ctx, cfg)
		}
		testEnv.Client.DeleteAllOf(ctx, &v1alpha1.BpfTenantProgram{}, client.InNamespace(ns.Name))
	})
	return cfg
}

// editTenantConfig applies edit to the tenant config like cfg until the
// update goes through.
func editTenantConfig(t *testing.T, cfg *v1alpha1.BpfTenantProgramConfig, edit func(*v1alpha1.BpfTenantProgramConfig)) {
	t.Helper()
	k8stest.Eventually(t, timeout, func() error {
		c := &v1alpha1.BpfTenantProgramConfig{}
		if err := testEnv.Client.Get(context.Background(), client.ObjectKeyFromObject(cfg), c); err != nil {
			return err
		}
		edit(c)
		return testEnv.Client.Update(context.Background(), c)
	})
}

// The tenant reconciler writes its reports as the cluster one does
// (TestAgentWritesNothingWhileTheFinalizerIsDue): nothing while the node's
// finalizer is due, then one create and one status write.
func TestTenantAgentWritesNothingWhileTheFinalizerIsDue(t *testing.T) {
	name := k8stest.Name(t)
	testEnv.CreateNode(t, name+"-a", map[string]string{"test": name})
	n := startTenantAgent(t, name+"-a", agent.ReconcilerOptions{RetryPeriod: time.Minute})
	cfg := createTenantConfig(t, name, name)
	waitTenantReport(t, createTenantConfig(t, name+"-b", name, n.name), n.name, v1alpha1.ReasonLoaded)
	btp := v1alpha1.BpfProgramName(cfg.Name, n.name)
	if w := writesTo(n, btp); len(w) != 0 {
		t.Errorf("writes %v before the finalizer, want none", w)
	}
	editTenantConfig(t, cfg, func(c *v1alpha1.BpfTenantProgramConfig) {
		controllerutil.AddFinalizer(c, v1alpha1.NodeFinalizer(n.name))
	})
	waitTenantReport(t, cfg, n.name, v1alpha1.ReasonLoaded)
	time.Sleep(500 * time.Millisecond)
	if got, want := writesTo(n, btp), []string{"create BpfTenantProgram/" + btp, "update status BpfTenantProgram/" + btp}; !slices.Equal(got, want) {
		t.Errorf("writes %v, want %v", got, want)
	}
}

// waitTenantReport waits until the BpfTenantProgram of cfg on node has a
// Ready condition with reason, and returns it.
func waitTenantReport(t *testing.T, cfg *v1alpha1.BpfTenantProgramConfig, node, reason string) *v1alpha1.BpfTenantProgram {
	t.Helper()
	btp := &v1alpha1.BpfTenantProgram{}
	key := client.ObjectKey{Namespace: cfg.Namespace, Name: v1alpha1.BpfProgramName(cfg.Name, node)}
	k8stest.Eventually(t, timeout, func() error {
		if err := testEnv.Client.Get(context.Background(), key, btp); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(btp.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Reason != reason {
			return fmt.Errorf("BpfTenantProgram %s: Ready %+v, want reason %s", key, c, reason)
		}
		return nil
	})
	return btp
}

// TestTenantAgentDoesNotWriteWhenNothingChanged counts the tenant agent's
// API writes while it reconciles a converged tenant config again and again,
// as TestAgentDoesNotWriteWhenNothingChanged does for the cluster one.
func TestTenantAgentDoesNotWriteWhenNothingChanged(t *testing.T) {
	name := k8stest.Name(t)
	testEnv.CreateNode(t, name+"-a", map[string]string{"test": name})
	n := startTenantAgent(t, name+"-a", agent.ReconcilerOptions{ResyncPeriod: 100 * time.Millisecond})
	cfg := createTenantConfig(t, name, name, name+"-a")
	waitTenantReport(t, cfg, n.name, v1alpha1.ReasonLoaded)
	time.Sleep(500 * time.Millisecond)
	n.writes.Reset()
	lists := n.daemon.Calls("List")

	editTenantConfig(t, cfg, func(c *v1alpha1.BpfTenantProgramConfig) { c.Annotations = map[string]string{"note": "hello"} })
	time.Sleep(time.Second)

	if w := n.writes.Writes(); len(w) != 0 {
		t.Errorf("the agent wrote %d times with nothing to change: %v", len(w), w)
	}
	if got := n.daemon.Calls("List"); got < lists+5 {
		t.Fatalf("only %d reconciles in a second; the test proves nothing", got-lists)
	}
}
