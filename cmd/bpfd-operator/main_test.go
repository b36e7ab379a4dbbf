package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bpfd-dev/bpfd/internal/testing/k8stest"
	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

var testEnv *k8stest.Env

func TestMain(m *testing.M) {
	if os.Getenv(k8stest.RunMainEnv) == "1" {
		main()
		return
	}
	k8stest.Main(m, &testEnv)
}

// TestOperatorProcess runs bpfd-operator as a process against envtest's API
// server, configured as its Deployment does: it creates the DaemonSet from
// the ConfigMap and puts the node finalizers on a config.
func TestOperatorProcess(t *testing.T) {
	ctx := context.Background()
	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bpfd-operator-process-"}}
	if err := testEnv.Client.Create(ctx, namespace); err != nil {
		t.Fatal(err)
	}
	ns := namespace.Name
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bpfd-config"}, Data: map[string]string{"bpfd.log.level": "debug"}}
	if err := testEnv.Client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	testEnv.CreateNode(t, "operator-process-node", map[string]string{"test": "operator-process"})
	t.Setenv("POD_NAMESPACE", ns)
	t.Setenv("BPFD_IMAGE", "bpfd:test")
	t.Setenv("BPFD_AGENT_IMAGE", "bpfd-agent:test")
	k8stest.RunMain(t, "--kubeconfig", testEnv.Kubeconfig(t), "--leader-elect")

	ds := &appsv1.DaemonSet{}
	k8stest.Eventually(t, 30*time.Second, func() error {
		if err := testEnv.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "bpfd"}, ds); err != nil {
			return err
		}
		if img := ds.Spec.Template.Spec.Containers[0].Image; img != "bpfd:test" {
			return fmt.Errorf("bpfd image %q", img)
		}
		return nil
	})

	cfg := &v1alpha1.BpfProgramConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "operator-process"},
		Spec: v1alpha1.BpfProgramConfigSpec{
			Bytecode: v1alpha1.BytecodeImage{Image: "registry.example.com/bpfd/tracepoint_counter:v1", AllowTagUnsafe: true},
			Programs: []v1alpha1.Program{{Name: "tracepoint_counter", Type: "tracepoint",
				Tracepoint: &v1alpha1.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}}},
			NodeSelector: v1alpha1.LabelSelector{MatchLabels: map[string]string{"test": "operator-process"}},
		},
	}
	if err := testEnv.Client.Create(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	k8stest.Eventually(t, 30*time.Second, func() error {
		if err := testEnv.Client.Get(ctx, client.ObjectKeyFromObject(cfg), cfg); err != nil {
			return err
		}
		if !slices.Contains(cfg.Finalizers, v1alpha1.NodeFinalizer("operator-process-node")) || cfg.Status.NodesSelected != 1 {
			return fmt.Errorf("finalizers %v, %d nodes selected", cfg.Finalizers, cfg.Status.NodesSelected)
		}
		return nil
	})
	// No agent runs: deleting the node releases the config.
	if err := testEnv.Client.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "operator-process-node"}}); err != nil {
		t.Fatal(err)
	}
	if err := testEnv.Client.Delete(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	testEnv.WaitGone(t, 30*time.Second, cfg)
}
