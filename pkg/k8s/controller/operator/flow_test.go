package operator_test

// The flow tests run bpfd-operator and one bpfd-agent per simulated node in
// this process, against envtest's API server. Each agent talks over a real
// unix socket to an in-memory bpfd (k8stest.Daemon) that answers as bpfd's
// API documents; the end-to-end suite with a real bpfd and the kernel
// replaces it once the daemon lands.

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bpfd-dev/bpfd/internal/testing/k8stest"
	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/agent"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

type simNode struct {
	name   string
	daemon *k8stest.Daemon
	writes *k8stest.WriteCounter
	stop   func()
}

func startNode(t *testing.T, name string, labels map[string]string) *simNode {
	t.Helper()
	testEnv.CreateNode(t, name, labels)
	n := &simNode{name: name, daemon: k8stest.StartDaemon(t)}
	dc, err := agent.DialDaemon(n.daemon.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dc.Close() })
	n.stop = testEnv.StartManager(t, ctrl.Options{Cache: agent.CacheOptions(name)}, func(mgr ctrl.Manager) error {
		n.writes = k8stest.CountWrites(mgr.GetClient())
		return agent.NewReconciler(n.writes, dc, name, agent.ReconcilerOptions{
			PrimaryInterface: func() (string, error) { return "eth0", nil },
		}).SetupWithManager(mgr)
	})
	return n
}

func bpfProgramsOf(t *testing.T, config string) map[string]*v1alpha1.BpfProgram {
	t.Helper()
	var list v1alpha1.BpfProgramList
	// spec.configName is a selectable field of the CRD: the API server
	// filters.
	if err := testEnv.Client.List(context.Background(), &list, client.MatchingFields{"spec.configName": config}); err != nil {
		t.Fatal(err)
	}
	m := map[string]*v1alpha1.BpfProgram{}
	for i := range list.Items {
		m[list.Items[i].Spec.NodeName] = &list.Items[i]
	}
	return m
}

// TestConfigToNodes follows a config from creation to deletion through the
// operator and three nodes' agents, two of which it selects.
func TestConfigToNodes(t *testing.T) {
	name := k8stest.Name(t)
	opWrites := startOperator(t)
	a := startNode(t, name+"-a", map[string]string{"test": name, "role": "edge"})
	b := startNode(t, name+"-b", map[string]string{"test": name, "role": "edge"})
	c := startNode(t, name+"-c", map[string]string{"test": name, "role": "core"})

	start := time.Now()
	cfg := newConfig(name, name)
	cfg.Spec.NodeSelector.MatchLabels["role"] = "edge"
	createConfig(t, cfg)
	waitConfig(t, name, countsAre(counts{Selected: 2, Loaded: 2, Ready: v1alpha1.ReasonAllNodesLoaded}))
	t.Logf("config Ready on 2 nodes %s after creation", time.Since(start).Round(time.Millisecond))

	// Per-node objects for the selected nodes only, and programs in their
	// bpfd only.
	bps := bpfProgramsOf(t, name)
	if len(bps) != 2 || bps[a.name] == nil || bps[b.name] == nil {
		t.Fatalf("BpfPrograms for nodes %v, want %s and %s", keys(bps), a.name, b.name)
	}
	for _, n := range []*simNode{a, b} {
		ps := n.daemon.Programs()
		if len(ps) != 1 || ps[0].GetMetadata()[agent.MetadataConfigUID] != string(cfg.UID) {
			t.Errorf("node %s's bpfd holds %v", n.name, ps)
		}
		if got := bps[n.name].Status.Programs; len(got) != 1 || got[0].ID != int64(ps[0].GetId()) {
			t.Errorf("node %s reports %v, bpfd holds %v", n.name, got, ps)
		}
	}
	if ps := c.daemon.Programs(); len(ps) != 0 {
		t.Errorf("unselected node's bpfd holds %v", ps)
	}

	// Settled: nobody writes.
	time.Sleep(500 * time.Millisecond)
	for _, w := range []*k8stest.WriteCounter{opWrites, a.writes, b.writes, c.writes} {
		w.Reset()
	}
	time.Sleep(time.Second)
	for who, w := range map[string]*k8stest.WriteCounter{"operator": opWrites, a.name: a.writes, b.name: b.writes, c.name: c.writes} {
		if got := w.Writes(); len(got) != 0 {
			t.Errorf("%s wrote %v with nothing to change", who, got)
		}
	}

	// Node b's trust policy refuses the next image: PolicyDenied in b's
	// BpfProgram and in the config.
	newImage := "registry.example.com/bpfd/tracepoint_counter" + digestB
	b.daemon.Reject(newImage, codes.PermissionDenied, bpfdv1.ErrorReason_ERROR_REASON_POLICY_DENIED, "no rule admits "+newImage+": signed by an untrusted key")
	k8stest.Eventually(t, timeout, func() error {
		if err := testEnv.Client.Get(context.Background(), client.ObjectKeyFromObject(cfg), cfg); err != nil {
			return err
		}
		cfg.Spec.Bytecode.Image = newImage
		return testEnv.Client.Update(context.Background(), cfg)
	})
	got := waitConfig(t, name, countsAre(counts{Selected: 2, Loaded: 1, Failed: 1, Ready: v1alpha1.ReasonNodesFailed}))
	wantMsg := "load: no rule admits " + newImage + ": signed by an untrusted key"
	if f := got.Status.Failures; len(f) != 1 || f[0].NodeName != b.name || f[0].Reason != v1alpha1.ReasonPolicyDenied || f[0].Message != wantMsg {
		t.Errorf("failures %+v, want %s PolicyDenied %q", f, b.name, wantMsg)
	}
	bpB := bpfProgramsOf(t, name)[b.name]
	if r := meta.FindStatusCondition(bpB.Status.Conditions, v1alpha1.ConditionReady); r == nil || r.Reason != v1alpha1.ReasonPolicyDenied {
		t.Errorf("node b reports %+v, want PolicyDenied", r)
	}
	if ps := b.daemon.Programs(); len(ps) != 0 {
		t.Errorf("node b's bpfd still holds %v after its policy refused the new image", ps)
	}

	// Deletion: unloaded everywhere, then the objects are gone.
	if err := testEnv.Client.Delete(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	testEnv.WaitGone(t, timeout, cfg)
	for _, n := range []*simNode{a, b, c} {
		if ps := n.daemon.Programs(); len(ps) != 0 {
			t.Errorf("node %s's bpfd holds %v after the config is gone", n.name, ps)
		}
	}
	if bps := bpfProgramsOf(t, name); len(bps) != 0 {
		t.Errorf("BpfPrograms of nodes %v remain", keys(bps))
	}
}

// TestConfigDeletionWithAVanishedNode: a node that went away with its agent
// does not keep a deleted config forever.
func TestConfigDeletionWithAVanishedNode(t *testing.T) {
	name := k8stest.Name(t)
	startOperator(t)
	a := startNode(t, name+"-a", map[string]string{"test": name})
	b := startNode(t, name+"-b", map[string]string{"test": name})
	cfg := createConfig(t, newConfig(name, name))
	waitConfig(t, name, countsAre(counts{Selected: 2, Loaded: 2, Ready: v1alpha1.ReasonAllNodesLoaded}))

	// Node b dies: its agent stops, then its Node object is deleted.
	b.stop()
	ctx := context.Background()
	if err := testEnv.Client.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: b.name}}); err != nil {
		t.Fatal(err)
	}
	waitConfig(t, name, countsAre(counts{Selected: 1, Loaded: 1, Ready: v1alpha1.ReasonAllNodesLoaded}))

	if err := testEnv.Client.Delete(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	testEnv.WaitGone(t, timeout, cfg)
	if ps := a.daemon.Programs(); len(ps) != 0 {
		t.Errorf("node a's bpfd holds %v", ps)
	}
	if bps := bpfProgramsOf(t, name); len(bps) != 0 {
		t.Errorf("BpfPrograms of nodes %v remain", keys(bps))
	}
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
