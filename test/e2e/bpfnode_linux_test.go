package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bpfd-dev/bpfd/internal/testing/k8stest"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/agent"
)

// testBpfNode: a Pod on the node, and a process in the cgroup the kubelet
// would give a container of that pod, loading and holding a program
// outside bpfd. The node's BpfNode lists the program as unmanaged, held by
// that process in that pod, by namespace and name; kubectl get bpfnodes
// shows the node's counts.
func (c *cluster) testBpfNode(t *testing.T) {
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "loader-" + testutil.RandomSuffix(6)},
		Spec:       corev1.PodSpec{NodeName: c.node, Containers: []corev1.Container{{Name: "loader", Image: "example.com/loader"}}},
	}
	if err := testEnv.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testEnv.Client.Delete(ctx, pod) })
	pp := testutil.StartPodProcess(t, testutil.CgroupDriverSystemd, string(pod.UID))

	bn := &v1alpha1.BpfNode{}
	k8stest.Eventually(t, timeout, func() error {
		if err := testEnv.Client.Get(ctx, client.ObjectKey{Name: c.node}, bn); err != nil {
			return err
		}
		for _, p := range bn.Status.Unmanaged {
			if p.KernelID != int64(pp.ProgramID) {
				continue
			}
			for _, h := range p.Holders {
				if h.PID == int32(pp.PID) && h.PodNamespace == pod.Namespace && h.PodName == pod.Name && h.ContainerID == pp.ContainerID {
					return nil
				}
			}
			return fmt.Errorf("program %d: holders %+v, want process %d in pod %s/%s", pp.ProgramID, p.Holders, pp.PID, pod.Namespace, pod.Name)
		}
		return fmt.Errorf("BpfNode %s does not list program %d among %d (of %d unmanaged)", c.node, pp.ProgramID, len(bn.Status.Unmanaged), bn.Status.UnmanagedPrograms)
	})
	// The agent, as its service account under the admission policies,
	// announced the program in an event about its BpfNode.
	k8stest.Eventually(t, timeout, func() error {
		var events eventsv1.EventList
		if err := testEnv.Client.List(ctx, &events, client.InNamespace("default")); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Regarding.Kind == "BpfNode" && e.Regarding.Name == c.node && e.Reason == agent.ReasonUnmanagedProgram &&
				strings.Contains(e.Note, fmt.Sprintf("BPF program %d ", pp.ProgramID)) && namesPod(e.Note, pod) {
				return nil
			}
		}
		return fmt.Errorf("no %s event about program %d among %d events", agent.ReasonUnmanagedProgram, pp.ProgramID, len(events.Items))
	})
	rows := getTable(t, c.admin, "bpfnodes")
	r := row(t, rows, c.node)
	if r["UNMANAGED"] == "" || r["UNMANAGED"] == "0" || r["MANAGED"] != strconv.Itoa(int(bn.Status.ManagedPrograms)) || r["CHANGED"] == "" {
		t.Errorf("kubectl get bpfnodes: %v, want the node's counts and last change", r)
	}
}

// namesPod reports whether an event's note names the pod: by namespace and
// name, or by uid when the agent's pod cache had not yet seen the pod as the
// program appeared (the event is sent once, at the first sight).
func namesPod(note string, pod *corev1.Pod) bool {
	return strings.Contains(note, " in pod "+pod.Namespace+"/"+pod.Name) || strings.Contains(note, " in pod "+string(pod.UID))
}
