package main

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
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

// TestAgentProcess runs bpfd-agent as a process, configured by its flags
// and environment as the DaemonSet does, against envtest's API server and an
// in-memory bpfd on a unix socket (the end-to-end suite swaps in the real
// bpfd). The finalizer the operator would add is set by the test.
func TestAgentProcess(t *testing.T) {
	const node = "agent-process-node"
	testEnv.CreateNode(t, node, map[string]string{"test": "agent-process"})
	daemon := k8stest.StartDaemon(t)
	t.Setenv("NODE_NAME", node)
	k8stest.RunMain(t, "--bpfd-socket", daemon.Socket, "--kubeconfig", testEnv.Kubeconfig(t), "--log-level", "debug")

	cfg := &v1alpha1.BpfProgramConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "agent-process", Finalizers: []string{v1alpha1.NodeFinalizer(node)}},
		Spec: v1alpha1.BpfProgramConfigSpec{
			Bytecode: v1alpha1.BytecodeImage{Image: "registry.example.com/bpfd/tracepoint_counter:v1", AllowTagUnsafe: true},
			Programs: []v1alpha1.Program{{Name: "tracepoint_counter", Type: "tracepoint",
				Tracepoint: &v1alpha1.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}}},
			NodeSelector: v1alpha1.LabelSelector{MatchLabels: map[string]string{"test": "agent-process"}},
		},
	}
	ctx := context.Background()
	if err := testEnv.Client.Create(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	bp := &v1alpha1.BpfProgram{}
	k8stest.Eventually(t, 30*time.Second, func() error {
		if err := testEnv.Client.Get(ctx, client.ObjectKey{Name: v1alpha1.BpfProgramName(cfg.Name, node)}, bp); err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(bp.Status.Conditions, v1alpha1.ConditionReady) {
			return fmt.Errorf("BpfProgram %s not Ready: %+v", bp.Name, bp.Status.Conditions)
		}
		return nil
	})
	if ps := daemon.Programs(); len(ps) != 1 || bp.Status.Programs[0].ID != int64(ps[0].GetId()) {
		t.Fatalf("bpfd holds %v, the BpfProgram reports %v", ps, bp.Status.Programs)
	}

	// Deleted: unloaded, then the BpfProgram goes; the finalizer is the
	// operator's to remove.
	if err := testEnv.Client.Delete(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	testEnv.WaitGone(t, 30*time.Second, bp)
	if ps := daemon.Programs(); len(ps) != 0 {
		t.Errorf("bpfd still holds %v", ps)
	}
	cfg.Finalizers = nil
	if err := testEnv.Client.Get(ctx, client.ObjectKeyFromObject(cfg), cfg); err == nil {
		cfg.Finalizers = nil
		testEnv.Client.Update(ctx, cfg)
	}
}
