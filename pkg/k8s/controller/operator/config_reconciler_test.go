package operator_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bpfd-dev/bpfd/internal/testing/k8stest"
	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/operator"
)

var testEnv *k8stest.Env

func TestMain(m *testing.M) { k8stest.Main(m, &testEnv) }

const (
	digestA = "@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	timeout = 20 * time.Second
)

// startOperator runs the config controller; its writes are counted.
func startOperator(t *testing.T) *k8stest.WriteCounter {
	t.Helper()
	return startOperatorWith(t, operator.ConfigReconcilerOptions{})
}

func startOperatorWith(t *testing.T, opts operator.ConfigReconcilerOptions) *k8stest.WriteCounter {
	t.Helper()
	var writes *k8stest.WriteCounter
	testEnv.StartManager(t, ctrl.Options{}, func(mgr ctrl.Manager) error {
		writes = k8stest.CountWrites(mgr.GetClient())
		return operator.NewConfigReconciler(writes, mgr.GetAPIReader(), opts).SetupWithManager(context.Background(), mgr)
	})
	return writes
}

func newConfig(name, selector string) *v1alpha1.BpfProgramConfig {
	return &v1alpha1.BpfProgramConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.BpfProgramConfigSpec{
			Bytecode: v1alpha1.BytecodeImage{Image: "registry.example.com/bpfd/tracepoint_counter" + digestA},
			Programs: []v1alpha1.Program{{Name: "tracepoint_counter", Type: "tracepoint",
				Tracepoint: &v1alpha1.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}}},
			NodeSelector: v1alpha1.LabelSelector{MatchLabels: map[string]string{"test": selector}},
		},
	}
}

func createConfig(t *testing.T, cfg *v1alpha1.BpfProgramConfig) *v1alpha1.BpfProgramConfig {
	t.Helper()
	if err := testEnv.Client.Create(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		c := &v1alpha1.BpfProgramConfig{}
		if testEnv.Client.Get(ctx, client.ObjectKeyFromObject(cfg), c) == nil {
			c.Finalizers = nil
			testEnv.Client.Update(ctx, c)
			testEnv.Client.Delete(ctx, c)
		}
	})
	return cfg
}

// writeReport creates or updates node's BpfProgram of cfg as its agent
// would.
func writeReport(t *testing.T, cfg *v1alpha1.BpfProgramConfig, node string, status metav1.ConditionStatus, reason, msg string) *v1alpha1.BpfProgram {
	t.Helper()
	ctx := context.Background()
	bp := &v1alpha1.BpfProgram{}
	key := client.ObjectKey{Name: v1alpha1.BpfProgramName(cfg.Name, node)}
	if err := testEnv.Client.Get(ctx, key, bp); err != nil {
		bp = newBpfProgram(key.Name, cfg, node)
		if err := testEnv.Client.Create(ctx, bp); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { testEnv.Client.Delete(ctx, bp) })
	}
	return setReport(t, bp, cfg, status, reason, msg)
}

// newBpfProgram returns a BpfProgram called name with the spec of cfg on
// node, controlled by cfg.
func newBpfProgram(name string, cfg *v1alpha1.BpfProgramConfig, node string) *v1alpha1.BpfProgram {
	return &v1alpha1.BpfProgram{
		ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: v1alpha1.GroupVersion.String(), Kind: "BpfProgramConfig", Name: cfg.Name, UID: cfg.UID, Controller: ptr.To(true),
		}}},
		Spec: v1alpha1.BpfProgramSpec{NodeName: node, ConfigName: cfg.Name},
	}
}

// setReport writes a Ready condition on cfg's current generation into bp's
// status.
func setReport(t *testing.T, bp *v1alpha1.BpfProgram, cfg *v1alpha1.BpfProgramConfig, status metav1.ConditionStatus, reason, msg string) *v1alpha1.BpfProgram {
	t.Helper()
	bp.Status.ObservedConfigGeneration = cfg.Generation
	meta.SetStatusCondition(&bp.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: status, Reason: reason, Message: msg})
	if err := testEnv.Client.Status().Update(context.Background(), bp); err != nil {
		t.Fatal(err)
	}
	return bp
}

// waitConfig waits until check accepts the config.
func waitConfig(t *testing.T, name string, check func(*v1alpha1.BpfProgramConfig) error) *v1alpha1.BpfProgramConfig {
	t.Helper()
	cfg := &v1alpha1.BpfProgramConfig{}
	k8stest.Eventually(t, timeout, func() error {
		if err := testEnv.Client.Get(context.Background(), client.ObjectKey{Name: name}, cfg); err != nil {
			return err
		}
		return check(cfg)
	})
	return cfg
}

func finalizersAre(want ...string) func(*v1alpha1.BpfProgramConfig) error {
	return func(c *v1alpha1.BpfProgramConfig) error {
		got := slices.Clone(c.Finalizers)
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			return fmt.Errorf("finalizers (-want +got):\n%s", diff)
		}
		return nil
	}
}

type counts struct {
	Selected, Loaded, Failed int32
	Ready                    string
}

func countsAre(want counts) func(*v1alpha1.BpfProgramConfig) error {
	return func(c *v1alpha1.BpfProgramConfig) error {
		got := counts{Selected: c.Status.NodesSelected, Loaded: c.Status.NodesLoaded, Failed: c.Status.NodesFailed}
		if r := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionReady); r != nil {
			got.Ready = r.Reason
		}
		if diff := cmp.Diff(want, got); diff != "" {
			return fmt.Errorf("status (-want +got):\n%s", diff)
		}
		return nil
	}
}

func TestOperatorKeepsNodeFinalizersAndStatus(t *testing.T) {
	name := k8stest.Name(t)
	a, b, c := name+"-a", name+"-b", name+"-c"
	testEnv.CreateNode(t, a, map[string]string{"test": name})
	testEnv.CreateNode(t, b, map[string]string{"test": name})
	nodeC := testEnv.CreateNode(t, c, map[string]string{"test": "other"})
	startOperator(t)
	cfg := createConfig(t, newConfig(name, name))

	waitConfig(t, name, finalizersAre(v1alpha1.NodeFinalizer(a), v1alpha1.NodeFinalizer(b)))
	waitConfig(t, name, countsAre(counts{Selected: 2, Ready: v1alpha1.ReasonNodesPending}))

	writeReport(t, cfg, a, metav1.ConditionTrue, v1alpha1.ReasonLoaded, "1 programs loaded")
	writeReport(t, cfg, b, metav1.ConditionFalse, v1alpha1.ReasonPolicyDenied, "load: signed by an untrusted key")
	got := waitConfig(t, name, countsAre(counts{Selected: 2, Loaded: 1, Failed: 1, Ready: v1alpha1.ReasonNodesFailed}))
	if diff := cmp.Diff([]v1alpha1.NodeFailure{{NodeName: b, Reason: v1alpha1.ReasonPolicyDenied, Message: "load: signed by an untrusted key"}}, got.Status.Failures); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
	if d := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionDegraded); d == nil || d.Status != metav1.ConditionTrue {
		t.Errorf("Degraded %+v, want True", d)
	}

	// A third node joins the selection.
	nodeC.Labels["test"] = name
	if err := testEnv.Client.Update(context.Background(), nodeC); err != nil {
		t.Fatal(err)
	}
	waitConfig(t, name, finalizersAre(v1alpha1.NodeFinalizer(a), v1alpha1.NodeFinalizer(b), v1alpha1.NodeFinalizer(c)))
	waitConfig(t, name, countsAre(counts{Selected: 3, Loaded: 1, Failed: 1, Ready: v1alpha1.ReasonNodesFailed}))

	// A new generation: every node's report is outdated until it reports on
	// it.
	k8stest.Eventually(t, timeout, func() error {
		if err := testEnv.Client.Get(context.Background(), client.ObjectKeyFromObject(cfg), cfg); err != nil {
			return err
		}
		cfg.Spec.Bytecode.Image = "registry.example.com/bpfd/tracepoint_counter" + digestB
		return testEnv.Client.Update(context.Background(), cfg)
	})
	waitConfig(t, name, countsAre(counts{Selected: 3, Ready: v1alpha1.ReasonNodesPending}))
	for _, n := range []string{a, b, c} {
		writeReport(t, cfg, n, metav1.ConditionTrue, v1alpha1.ReasonLoaded, "1 programs loaded")
	}
	waitConfig(t, name, countsAre(counts{Selected: 3, Loaded: 3, Ready: v1alpha1.ReasonAllNodesLoaded}))
}

// TestOperatorCountsOnlyTheNodesReports: a BpfProgram of a node and
// config that is not the node's report (another name, such as an older
// agent's <config>-<node>, or the right name controlled by something else)
// does not count in the status, though it keeps the node's finalizer.
func TestOperatorCountsOnlyTheNodesReports(t *testing.T) {
	name := k8stest.Name(t)
	a := name + "-a"
	testEnv.CreateNode(t, a, map[string]string{"test": name})
	startOperator(t)
	cfg := createConfig(t, newConfig(name, name))
	waitConfig(t, name, finalizersAre(v1alpha1.NodeFinalizer(a)))
	writeReport(t, cfg, a, metav1.ConditionFalse, v1alpha1.ReasonPolicyDenied, "load: signed by an untrusted key")
	waitConfig(t, name, countsAre(counts{Selected: 1, Failed: 1, Ready: v1alpha1.ReasonNodesFailed}))

	ctx := context.Background()
	other := &v1alpha1.BpfProgramConfig{}
	if err := testEnv.Client.Get(ctx, client.ObjectKeyFromObject(cfg), other); err != nil {
		t.Fatal(err)
	}
	other.UID = "not-the-configs-uid"
	for _, o := range []*v1alpha1.BpfProgram{
		newBpfProgram(name+"-"+a, cfg, a),                           // the name before hashes
		newBpfProgram(v1alpha1.BpfProgramName(name, a)+"x", cfg, a), // any other name
		newBpfProgram(v1alpha1.BpfProgramName(name+"-x", a), other, a),
	} {
		o.Spec.ConfigName = name
		if err := testEnv.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { testEnv.Client.Delete(ctx, o) })
		setReport(t, o, cfg, metav1.ConditionTrue, v1alpha1.ReasonLoaded, "1 programs loaded")
	}
	// The status does not move; a change of the real report still shows.
	time.Sleep(500 * time.Millisecond)
	waitConfig(t, name, countsAre(counts{Selected: 1, Failed: 1, Ready: v1alpha1.ReasonNodesFailed}))
	writeReport(t, cfg, a, metav1.ConditionFalse, v1alpha1.ReasonVerifierRejected, "verifier")
	got := waitConfig(t, name, countsAre(counts{Selected: 1, Failed: 1, Ready: v1alpha1.ReasonNodesFailed}))
	k8stest.Eventually(t, timeout, func() error {
		got = waitConfig(t, name, countsAre(counts{Selected: 1, Failed: 1, Ready: v1alpha1.ReasonNodesFailed}))
		if len(got.Status.Failures) != 1 || got.Status.Failures[0].Reason != v1alpha1.ReasonVerifierRejected {
			return fmt.Errorf("failures %+v, want node %s VerifierRejected", got.Status.Failures, a)
		}
		return nil
	})
}

// TestOperatorReleasesTheConfig: a deleted config stays while a node still
// reports on it, and goes once every node's agent deleted its BpfProgram or
// the node is gone.
func TestOperatorReleasesTheConfig(t *testing.T) {
	name := k8stest.Name(t)
	a, b := name+"-a", name+"-b"
	testEnv.CreateNode(t, a, map[string]string{"test": name})
	nodeB := testEnv.CreateNode(t, b, map[string]string{"test": name})
	startOperator(t)
	cfg := createConfig(t, newConfig(name, name))
	waitConfig(t, name, finalizersAre(v1alpha1.NodeFinalizer(a), v1alpha1.NodeFinalizer(b)))
	bpA := writeReport(t, cfg, a, metav1.ConditionTrue, v1alpha1.ReasonLoaded, "")
	bpB := writeReport(t, cfg, b, metav1.ConditionTrue, v1alpha1.ReasonLoaded, "")
	waitConfig(t, name, countsAre(counts{Selected: 2, Loaded: 2, Ready: v1alpha1.ReasonAllNodesLoaded}))

	ctx := context.Background()
	if err := testEnv.Client.Delete(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	waitConfig(t, name, finalizersAre(v1alpha1.NodeFinalizer(a), v1alpha1.NodeFinalizer(b)))

	// Node a's agent unloaded and deleted its report.
	if err := testEnv.Client.Delete(ctx, bpA); err != nil {
		t.Fatal(err)
	}
	waitConfig(t, name, finalizersAre(v1alpha1.NodeFinalizer(b)))

	// Node b is gone, its agent with it: it must not block the deletion.
	if err := testEnv.Client.Delete(ctx, nodeB); err != nil {
		t.Fatal(err)
	}
	testEnv.WaitGone(t, timeout, cfg)
	testEnv.WaitGone(t, timeout, bpB)
}

// TestOperatorDoesNotWriteWhenNothingChanged counts the operator's writes
// while events that change nothing make it reconcile a settled config.
func TestOperatorDoesNotWriteWhenNothingChanged(t *testing.T) {
	name := k8stest.Name(t)
	node := testEnv.CreateNode(t, name+"-a", map[string]string{"test": name})
	writes := startOperator(t)
	cfg := createConfig(t, newConfig(name, name))
	waitConfig(t, name, finalizersAre(v1alpha1.NodeFinalizer(node.Name)))
	bp := writeReport(t, cfg, node.Name, metav1.ConditionTrue, v1alpha1.ReasonLoaded, "")
	waitConfig(t, name, countsAre(counts{Selected: 1, Loaded: 1, Ready: v1alpha1.ReasonAllNodesLoaded}))
	time.Sleep(300 * time.Millisecond)
	writes.Reset()

	ctx := context.Background()
	for i := range 5 {
		// A node label (reconciles every config) and a BpfProgram
		// annotation (reconciles its config), neither changing anything.
		node.Labels["unrelated"] = fmt.Sprint(i)
		if err := testEnv.Client.Update(ctx, node); err != nil {
			t.Fatal(err)
		}
		k8stest.Eventually(t, timeout, func() error {
			if err := testEnv.Client.Get(ctx, client.ObjectKeyFromObject(bp), bp); err != nil {
				return err
			}
			bp.Annotations = map[string]string{"touched": fmt.Sprint(i)}
			return testEnv.Client.Update(ctx, bp)
		})
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if w := writes.Writes(); len(w) != 0 {
		t.Errorf("the operator wrote %d times with nothing to change: %v", len(w), w)
	}
	if reconciles := writes.Lists() / 2; reconciles < 5 {
		t.Fatalf("only %d reconciles; the test proves nothing", reconciles)
	}
}

// TestOperatorCoalescesProgress: while nodes report one by one, a status
// that only counts more nodes loaded waits for ProgressInterval; the
// transition to Ready is written at once.
func TestOperatorCoalescesProgress(t *testing.T) {
	name := k8stest.Name(t)
	nodes := []string{name + "-a", name + "-b", name + "-c"}
	for _, n := range nodes {
		testEnv.CreateNode(t, n, map[string]string{"test": name})
	}
	writes := startOperatorWith(t, operator.ConfigReconcilerOptions{ProgressInterval: time.Hour})
	cfg := createConfig(t, newConfig(name, name))
	waitConfig(t, name, countsAre(counts{Selected: 3, Ready: v1alpha1.ReasonNodesPending}))
	time.Sleep(300 * time.Millisecond)
	writes.Reset()

	for _, n := range nodes[:2] {
		writeReport(t, cfg, n, metav1.ConditionTrue, v1alpha1.ReasonLoaded, "1 programs loaded")
	}
	time.Sleep(time.Second)
	waitConfig(t, name, countsAre(counts{Selected: 3, Ready: v1alpha1.ReasonNodesPending}))
	if w := writes.Writes(); len(w) != 0 {
		t.Errorf("progress written before the interval: %v", w)
	}
	writeReport(t, cfg, nodes[2], metav1.ConditionTrue, v1alpha1.ReasonLoaded, "1 programs loaded")
	waitConfig(t, name, countsAre(counts{Selected: 3, Loaded: 3, Ready: v1alpha1.ReasonAllNodesLoaded}))
	if w, want := writes.Writes(), []string{"update status BpfProgramConfig/" + name}; !slices.Equal(w, want) {
		t.Errorf("writes %v, want %v", w, want)
	}
}

// TestOperatorWritesHeldProgress: progress held back is written once
// ProgressInterval has passed, with no further event.
func TestOperatorWritesHeldProgress(t *testing.T) {
	name := k8stest.Name(t)
	nodes := []string{name + "-a", name + "-b"}
	for _, n := range nodes {
		testEnv.CreateNode(t, n, map[string]string{"test": name})
	}
	startOperatorWith(t, operator.ConfigReconcilerOptions{ProgressInterval: 2 * time.Second})
	cfg := createConfig(t, newConfig(name, name))
	waitConfig(t, name, countsAre(counts{Selected: 2, Ready: v1alpha1.ReasonNodesPending}))
	writeReport(t, cfg, nodes[0], metav1.ConditionTrue, v1alpha1.ReasonLoaded, "1 programs loaded")
	waitConfig(t, name, countsAre(counts{Selected: 2, Loaded: 1, Ready: v1alpha1.ReasonNodesPending}))
}
