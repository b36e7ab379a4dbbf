package agent_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bpfd-dev/bpfd/internal/testing/k8stest"
	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/agent"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// reportPeriod is the reporters' period in these tests.
const reportPeriod = 200 * time.Millisecond

// startReporter runs node's NodeReporter against its in-memory bpfd, with
// its writes counted.
func startReporter(t *testing.T, node string, d *k8stest.Daemon) *k8stest.WriteCounter {
	t.Helper()
	dc, err := agent.DialDaemon(d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dc.Close() })
	var writes *k8stest.WriteCounter
	testEnv.StartManager(t, ctrl.Options{Cache: agent.CacheOptions(node)}, func(mgr ctrl.Manager) error {
		writes = k8stest.CountWrites(mgr.GetClient())
		if err := agent.IndexPodUIDs(context.Background(), mgr.GetFieldIndexer()); err != nil {
			return err
		}
		return mgr.Add(agent.NewNodeReporter(writes, dc, node, mgr.GetEventRecorder("bpfd-agent"), agent.NodeReportOptions{Period: reportPeriod}))
	})
	return writes
}

// createPod creates a pod on node, deleted when the test ends, and returns
// it with the uid the API server gave it.
func createPod(t *testing.T, namespace, name, node string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "example.com/c"}}},
	}
	if err := testEnv.Client.Create(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testEnv.Client.Delete(context.Background(), pod) })
	return pod
}

// unmanaged is an inventory of programs bpfd did not load, each held by
// the process pids give, each process in the pod of the uid podUIDs give.
func unmanaged(ids []uint32, pids map[uint32]int32, podUIDs map[int32]string) *bpfdv1.InventoryResponse {
	inv := &bpfdv1.InventoryResponse{HolderSource: bpfdv1.HolderSource_HOLDER_SOURCE_ITERATOR}
	for _, id := range ids {
		p := &bpfdv1.InventoryProgram{Id: id, Name: fmt.Sprintf("prog_%d", id), KernelType: "SchedCLS"}
		if pid, ok := pids[id]; ok {
			p.Holders = []*bpfdv1.Holder{{Pid: pid, Fds: []int32{7}}}
		}
		inv.Programs = append(inv.Programs, p)
	}
	for pid, uid := range podUIDs {
		inv.Processes = append(inv.Processes, &bpfdv1.HolderProcess{Pid: pid, Comm: fmt.Sprint("proc", pid),
			Pod: &bpfdv1.PodCgroup{Uid: uid, ContainerId: strings.Repeat("c", 64)}})
	}
	return inv
}

// waitBpfNode waits until node's BpfNode satisfies check and returns it.
func waitBpfNode(t *testing.T, node string, check func(*v1alpha1.BpfNode) error) *v1alpha1.BpfNode {
	t.Helper()
	bn := &v1alpha1.BpfNode{}
	k8stest.Eventually(t, timeout, func() error {
		if err := testEnv.Client.Get(context.Background(), client.ObjectKey{Name: node}, bn); err != nil {
			return err
		}
		return check(bn)
	})
	return bn
}

// TestBpfNodeReport: the agent reports its node's programs in its BpfNode,
// naming the pods of the processes holding the unmanaged ones when they
// run on the node; an idle node is not written again; a new unmanaged
// program is written once, with an event.
func TestBpfNodeReport(t *testing.T) {
	ctx := context.Background()
	node := k8stest.Name(t)
	other := node + "-other"
	testEnv.CreateNode(t, node, nil)
	testEnv.CreateNode(t, other, nil)
	here := createPod(t, "default", node+"-cilium", node)
	there := createPod(t, "default", node+"-elsewhere", other)
	t.Cleanup(func() { testEnv.Client.Delete(ctx, &v1alpha1.BpfNode{ObjectMeta: metav1.ObjectMeta{Name: node}}) })

	d := k8stest.StartDaemon(t)
	dc, err := agent.DialDaemon(d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	if _, err := dc.Load(ctx, &bpfdv1.LoadRequest{Bytecode: &bpfdv1.Bytecode{Reference: "example.com/x" + digestA},
		Programs: []*bpfdv1.LoadProgram{{Name: "tp", Type: bpfdv1.ProgramType_PROGRAM_TYPE_TRACEPOINT, Attach: &bpfdv1.AttachSpec{
			Spec: &bpfdv1.AttachSpec_Tracepoint{Tracepoint: &bpfdv1.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}}}}}}); err != nil {
		t.Fatal(err)
	}
	d.SetUnmanaged(unmanaged([]uint32{50, 51}, map[uint32]int32{50: 300, 51: 301},
		map[int32]string{300: string(here.UID), 301: string(there.UID)}))
	writes := startReporter(t, node, d)

	bn := waitBpfNode(t, node, func(bn *v1alpha1.BpfNode) error {
		if bn.Status.ManagedPrograms != 1 || bn.Status.UnmanagedPrograms != 2 || len(bn.Status.Unmanaged) != 2 {
			return fmt.Errorf("status %+v, want 1 managed and 2 unmanaged programs", bn.Status)
		}
		if h := bn.Status.Unmanaged[1].Holders; len(h) != 1 || h[0].PodName != here.Name || h[0].PodNamespace != here.Namespace {
			return fmt.Errorf("holders of program 50: %+v, want pod %s/%s", h, here.Namespace, here.Name)
		}
		return nil
	})
	if h := bn.Status.Unmanaged[0].Holders; len(h) != 1 || h[0].PodUID != string(there.UID) || h[0].PodName != "" {
		t.Errorf("holders of program 51: %+v, want pod uid %s of another node, not named", h, there.UID)
	}
	if c := meta.FindStatusCondition(bn.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Ready condition %+v, want True", c)
	}
	if bn.Status.LastChange == nil || bn.Spec.NodeName != node || len(bn.OwnerReferences) != 1 || bn.OwnerReferences[0].Kind != "Node" {
		t.Errorf("BpfNode %+v: want a last change, its node and owned by the Node", bn)
	}

	// Idle: no writes over several periods, none since the first report
	// but its create and status update.
	time.Sleep(2 * reportPeriod)
	if w, want := writes.Writes(), []string{"create BpfNode/" + node, "update status BpfNode/" + node}; !slices.Equal(w, want) {
		t.Errorf("first reports: writes %v, want %v", w, want)
	}
	writes.Reset()
	time.Sleep(5 * reportPeriod)
	if w := writes.Writes(); len(w) != 0 {
		t.Fatalf("idle node: writes %v, want none", w)
	}
	if n := d.Calls("Inventory"); n < 5 {
		t.Errorf("%d inventory calls, want one per period", n)
	}

	// A program appears: one write, and an event.
	d.SetUnmanaged(unmanaged([]uint32{50, 51, 52}, map[uint32]int32{50: 300, 51: 301},
		map[int32]string{300: string(here.UID), 301: string(there.UID)}))
	bn2 := waitBpfNode(t, node, func(bn *v1alpha1.BpfNode) error {
		if bn.Status.UnmanagedPrograms != 3 {
			return fmt.Errorf("%d unmanaged programs, want 3", bn.Status.UnmanagedPrograms)
		}
		return nil
	})
	if !bn2.Status.LastChange.After(bn.Status.LastChange.Time) && !bn2.Status.LastChange.Equal(bn.Status.LastChange) {
		t.Errorf("last change %v before %v", bn2.Status.LastChange, bn.Status.LastChange)
	}
	time.Sleep(3 * reportPeriod)
	if w := writes.Writes(); !slices.Equal(w, []string{"update status BpfNode/" + node}) {
		t.Errorf("writes %v, want one status update", w)
	}
	k8stest.Eventually(t, timeout, func() error {
		var events eventsv1.EventList
		if err := testEnv.Client.List(ctx, &events); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Regarding.Kind == "BpfNode" && e.Regarding.Name == node && e.Reason == agent.ReasonUnmanagedProgram && strings.Contains(e.Note, "BPF program 52 ") {
				return nil
			}
		}
		return fmt.Errorf("no %s event for program 52 among %d events", agent.ReasonUnmanagedProgram, len(events.Items))
	})

	// Another appears moments later, held in a pod: an event of its own,
	// related to the pod, not folded into the series of program 52's.
	d.SetUnmanaged(unmanaged([]uint32{50, 51, 52, 53}, map[uint32]int32{50: 300, 51: 301, 53: 302},
		map[int32]string{300: string(here.UID), 301: string(there.UID), 302: string(here.UID)}))
	k8stest.Eventually(t, timeout, func() error {
		var events eventsv1.EventList
		if err := testEnv.Client.List(ctx, &events); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Regarding.Name == node && e.Reason == agent.ReasonUnmanagedProgram && strings.Contains(e.Note, "BPF program 53 ") &&
				e.Related != nil && e.Related.Kind == "Pod" && e.Related.Name == here.Name && e.Related.Namespace == here.Namespace {
				return nil
			}
		}
		return fmt.Errorf("no %s event for program 53 related to pod %s/%s among %d events", agent.ReasonUnmanagedProgram, here.Namespace, here.Name, len(events.Items))
	})

	// bpfd goes away: the counts stay, the condition says so.
	d.Stop()
	waitBpfNode(t, node, func(bn *v1alpha1.BpfNode) error {
		c := meta.FindStatusCondition(bn.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Reason != v1alpha1.ReasonDaemonUnavailable || bn.Status.UnmanagedPrograms != 4 {
			return fmt.Errorf("Ready %+v with %d unmanaged programs, want DaemonUnavailable with 4", c, bn.Status.UnmanagedPrograms)
		}
		return nil
	})
	d.Start(t)
	waitBpfNode(t, node, func(bn *v1alpha1.BpfNode) error {
		if c := meta.FindStatusCondition(bn.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("Ready %+v, want True", c)
		}
		return nil
	})
}

// TestBpfNodeBounded lists at most 64 unmanaged programs and counts the
// others.
func TestBpfNodeBounded(t *testing.T) {
	node := k8stest.Name(t)
	testEnv.CreateNode(t, node, nil)
	t.Cleanup(func() {
		testEnv.Client.Delete(context.Background(), &v1alpha1.BpfNode{ObjectMeta: metav1.ObjectMeta{Name: node}})
	})
	d := k8stest.StartDaemon(t)
	var ids []uint32
	for i := range 70 {
		ids = append(ids, uint32(100+i))
	}
	inv := unmanaged(ids, nil, nil)
	inv.Omitted = &bpfdv1.InventoryOmitted{Programs: 5}
	d.SetUnmanaged(inv)
	startReporter(t, node, d)
	waitBpfNode(t, node, func(bn *v1alpha1.BpfNode) error {
		if len(bn.Status.Unmanaged) != v1alpha1.MaxUnmanagedPrograms || bn.Status.UnmanagedPrograms != 70 || bn.Status.OmittedPrograms != 6+5 {
			return fmt.Errorf("%d listed of %d, %d omitted; want 64 of 70, 11 omitted",
				len(bn.Status.Unmanaged), bn.Status.UnmanagedPrograms, bn.Status.OmittedPrograms)
		}
		return nil
	})
}
