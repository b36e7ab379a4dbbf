package agent_test

// These tests run the agent's reconciler in a real controller manager
// against envtest's real API server, and against an in-memory bpfd
// (k8stest.Daemon): a real gRPC server on a unix socket that answers as
// bpfd's API documents. They test the agent's side of the contract until the
// daemon exists; the end-to-end suite with a real bpfd, a signed artifact and
// the kernel replaces the in-memory daemon then.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/bpfd-dev/bpfd/internal/testing/k8stest"
	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/agent"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

var testEnv *k8stest.Env

func TestMain(m *testing.M) { k8stest.Main(m, &testEnv) }

const (
	digestA = "@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	timeout = 20 * time.Second
)

// nodeAgent is one simulated node: a Node object, its in-memory bpfd and an
// agent whose writes are counted.
type nodeAgent struct {
	name   string
	daemon *k8stest.Daemon
	writes *k8stest.WriteCounter
}

func startAgent(t *testing.T, nodeName string, opts agent.ReconcilerOptions) *nodeAgent {
	t.Helper()
	n := &nodeAgent{name: nodeName, daemon: k8stest.StartDaemon(t)}
	dc, err := agent.DialDaemon(n.daemon.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dc.Close() })
	if opts.PrimaryInterface == nil {
		opts.PrimaryInterface = func() (string, error) { return "eth0", nil }
	}
	testEnv.StartManager(t, ctrl.Options{Cache: agent.CacheOptions(nodeName)}, func(mgr ctrl.Manager) error {
		n.writes = k8stest.CountWrites(mgr.GetClient())
		return agent.NewReconciler(n.writes, dc, nodeName, opts).SetupWithManager(mgr)
	})
	return n
}

// createConfig creates a config of one XDP program on eth0 and eth1 for the
// nodes labelled test=<selector>, holding the node finalizers of nodes as
// bpfd-operator would.
func createConfig(t *testing.T, name, selector string, nodes ...string) *v1alpha1.BpfProgramConfig {
	t.Helper()
	cfg := &v1alpha1.BpfProgramConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.BpfProgramConfigSpec{
			Bytecode: v1alpha1.BytecodeImage{Image: "registry.example.com/bpfd/xdp_counter" + digestA},
			Programs: []v1alpha1.Program{{Name: "xdp_counter", Type: "xdp", XDP: &v1alpha1.XDPAttach{
				InterfaceSelector: v1alpha1.InterfaceSelector{Interfaces: []string{"eth0", "eth1"}},
			}}},
			NodeSelector: v1alpha1.LabelSelector{MatchLabels: map[string]string{"test": selector}},
		},
	}
	for _, n := range nodes {
		cfg.Finalizers = append(cfg.Finalizers, v1alpha1.NodeFinalizer(n))
	}
	if err := testEnv.Client.Create(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeConfig(cfg.Name) })
	return cfg
}

// removeConfig deletes a config and its BpfPrograms outright, as if the
// operator and agents had done their part.
func removeConfig(name string) {
	ctx := context.Background()
	cfg := &v1alpha1.BpfProgramConfig{}
	if err := testEnv.Client.Get(ctx, client.ObjectKey{Name: name}, cfg); err == nil {
		cfg.Finalizers = nil
		testEnv.Client.Update(ctx, cfg)
		testEnv.Client.Delete(ctx, cfg)
	}
	testEnv.Client.DeleteAllOf(ctx, &v1alpha1.BpfProgram{}, client.MatchingFields{"spec.configName": name})
}

func editConfig(t *testing.T, name string, edit func(*v1alpha1.BpfProgramConfig)) {
	t.Helper()
	k8stest.Eventually(t, timeout, func() error {
		cfg := &v1alpha1.BpfProgramConfig{}
		if err := testEnv.Client.Get(context.Background(), client.ObjectKey{Name: name}, cfg); err != nil {
			return err
		}
		edit(cfg)
		return testEnv.Client.Update(context.Background(), cfg)
	})
}

// waitReport waits until the BpfProgram of config on node, owned by the
// config as it is now, has a Ready condition with reason, and returns it.
func waitReport(t *testing.T, config, node, reason string) *v1alpha1.BpfProgram {
	t.Helper()
	bp := &v1alpha1.BpfProgram{}
	k8stest.Eventually(t, timeout, func() error {
		cfg := &v1alpha1.BpfProgramConfig{}
		if err := testEnv.Client.Get(context.Background(), client.ObjectKey{Name: config}, cfg); err != nil {
			return err
		}
		if err := testEnv.Client.Get(context.Background(), client.ObjectKey{Name: v1alpha1.BpfProgramName(config, node)}, bp); err != nil {
			return err
		}
		if ref := metav1.GetControllerOf(bp); ref == nil || ref.UID != cfg.UID {
			return fmt.Errorf("BpfProgram %s is owned by %+v, not config %s", bp.Name, ref, cfg.UID)
		}
		c := meta.FindStatusCondition(bp.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Reason != reason {
			return fmt.Errorf("BpfProgram %s: Ready %+v, want reason %s", bp.Name, c, reason)
		}
		return nil
	})
	return bp
}

// writesTo returns n's writes to the object named name.
func writesTo(n *nodeAgent, name string) []string {
	return slices.DeleteFunc(n.writes.Writes(), func(w string) bool { return !strings.HasSuffix(w, "/"+name) })
}

func waitPrograms(t *testing.T, d *k8stest.Daemon, want int) []*bpfdv1.Program {
	t.Helper()
	var ps []*bpfdv1.Program
	k8stest.Eventually(t, timeout, func() error {
		ps = d.Programs()
		if len(ps) != want {
			return fmt.Errorf("bpfd holds %d programs, want %d", len(ps), want)
		}
		return nil
	})
	return ps
}

func TestAgentLoadsAndReports(t *testing.T) {
	name := k8stest.Name(t)
	testEnv.CreateNode(t, name+"-a", map[string]string{"test": name})
	n := startAgent(t, name+"-a", agent.ReconcilerOptions{})
	cfg := createConfig(t, name, name, n.name)

	bp := waitReport(t, cfg.Name, n.name, v1alpha1.ReasonLoaded)
	programs := n.daemon.Programs()
	if len(programs) != 2 {
		t.Fatalf("bpfd holds %d programs, want 2 (one per interface)", len(programs))
	}
	// What the agent asked for: bpfd takes a program once per request, so
	// the second interface is a second request sharing the first's maps.
	loads := n.daemon.Loads()
	if len(loads) != 2 {
		t.Fatalf("%d Load calls, want 2 (one per interface)", len(loads))
	}
	for i, load := range loads {
		if got := load.GetBytecode().GetReference(); got != cfg.Spec.Bytecode.Image {
			t.Errorf("Load %d reference %q, want %q", i, got, cfg.Spec.Bytecode.Image)
		}
		for k, want := range map[string]string{agent.MetadataManagedBy: agent.ManagedByAgent, agent.MetadataConfig: cfg.Name, agent.MetadataConfigUID: string(cfg.UID)} {
			if got := load.GetMetadata()[k]; got != want {
				t.Errorf("Load %d metadata %s = %q, want %q", i, k, got, want)
			}
		}
	}
	if got, want := loads[1].GetMapOwnerId(), programs[0].GetId(); got != want {
		t.Errorf("the second Load's map owner is %d, want the first program, %d", got, want)
	}
	// What the agent reported.
	if diff := cmp.Diff(v1alpha1.BpfProgramSpec{NodeName: n.name, ConfigName: cfg.Name}, bp.Spec); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
	if ref := metav1.GetControllerOf(bp); ref == nil || ref.UID != cfg.UID || ref.Kind != "BpfProgramConfig" {
		t.Errorf("BpfProgram controller %+v, want the config", ref)
	}
	wantStatus := v1alpha1.BpfProgramStatus{
		ObservedConfigGeneration: cfg.Generation,
		Image:                    cfg.Spec.Bytecode.Image,
		Digest:                   strings.TrimPrefix(digestA, "@"),
		Signer:                   "SHA256:test-signer",
		Rule:                     "test-rule",
		PolicyFingerprint:        "sha256:test-policy",
	}
	// Both attachments count in the first one's map.
	first := int64(programs[0].GetId())
	for i, iface := range []string{"eth0", "eth1"} {
		id := int64(programs[i].GetId())
		wantStatus.Programs = append(wantStatus.Programs, v1alpha1.LoadedProgram{
			Name: "xdp_counter", Type: "xdp", AttachPoint: iface, ID: id, KernelID: 1000 + id, LinkIDs: []int64{3000 + id},
			PinPath: fmt.Sprintf("/run/bpfd/fs/%d", id),
			Maps:    []v1alpha1.LoadedMap{{Name: "counters", ID: 5000 + first, PinPath: fmt.Sprintf("/run/bpfd/fs/%d/counters", first)}},
		})
	}
	got := bp.Status
	got.Conditions = nil
	if diff := cmp.Diff(wantStatus, got); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

func TestAgentWaitsForItsFinalizer(t *testing.T) {
	name := k8stest.Name(t)
	testEnv.CreateNode(t, name+"-a", map[string]string{"test": name})
	n := startAgent(t, name+"-a", agent.ReconcilerOptions{})
	cfg := createConfig(t, name, name, "some-other-node")

	bp := waitReport(t, cfg.Name, n.name, v1alpha1.ReasonPending)
	if msg := meta.FindStatusCondition(bp.Status.Conditions, v1alpha1.ConditionReady).Message; !strings.Contains(msg, v1alpha1.NodeFinalizer(n.name)) {
		t.Errorf("Pending message %q does not name the finalizer", msg)
	}
	if calls := n.daemon.Calls("Load"); calls != 0 {
		t.Fatalf("%d Load calls before the node's finalizer was on the config", calls)
	}
	editConfig(t, cfg.Name, func(c *v1alpha1.BpfProgramConfig) {
		controllerutil.AddFinalizer(c, v1alpha1.NodeFinalizer(n.name))
	})
	waitReport(t, cfg.Name, n.name, v1alpha1.ReasonLoaded)
}

// A new config's report is created when the node's finalizer comes, with
// its first status once the programs are loaded: while the finalizer is due
// (RetryPeriod), nothing is written. A second config, with the finalizer,
// shows when the first was reconciled: the agent's one worker takes them in
// order.
func TestAgentWritesNothingWhileTheFinalizerIsDue(t *testing.T) {
	name := k8stest.Name(t)
	testEnv.CreateNode(t, name+"-a", map[string]string{"test": name})
	n := startAgent(t, name+"-a", agent.ReconcilerOptions{RetryPeriod: time.Minute})
	cfg := createConfig(t, name, name)
	createConfig(t, name+"-b", name, n.name)
	waitReport(t, name+"-b", n.name, v1alpha1.ReasonLoaded)
	bp := v1alpha1.BpfProgramName(cfg.Name, n.name)
	if w := writesTo(n, bp); len(w) != 0 {
		t.Errorf("writes %v before the finalizer, want none", w)
	}
	editConfig(t, cfg.Name, func(c *v1alpha1.BpfProgramConfig) {
		controllerutil.AddFinalizer(c, v1alpha1.NodeFinalizer(n.name))
	})
	waitReport(t, cfg.Name, n.name, v1alpha1.ReasonLoaded)
	time.Sleep(500 * time.Millisecond)
	if got, want := writesTo(n, bp), []string{"create BpfProgram/" + bp, "update status BpfProgram/" + bp}; !slices.Equal(got, want) {
		t.Errorf("writes %v, want %v", got, want)
	}
}

func TestAgentReloadsAnEditedConfig(t *testing.T) {
	name := k8stest.Name(t)
	testEnv.CreateNode(t, name+"-a", map[string]string{"test": name})
	n := startAgent(t, name+"-a", agent.ReconcilerOptions{})
	cfg := createConfig(t, name, name, n.name)
	waitReport(t, cfg.Name, n.name, v1alpha1.ReasonLoaded)
	before := n.daemon.Programs()

	newImage := "registry.example.com/bpfd/xdp_counter" + digestB
	editConfig(t, cfg.Name, func(c *v1alpha1.BpfProgramConfig) {
		c.Spec.Bytecode.Image = newImage
		c.Spec.Programs[0].XDP.InterfaceSelector.Interfaces = []string{"eth2"}
	})
	k8stest.Eventually(t, timeout, func() error {
		bp := waitReport(t, cfg.Name, n.name, v1alpha1.ReasonLoaded)
		if bp.Status.Image != newImage || len(bp.Status.Programs) != 1 || bp.Status.Programs[0].AttachPoint != "eth2" {
			return fmt.Errorf("status still reports %s on %d attach points", bp.Status.Image, len(bp.Status.Programs))
		}
		return nil
	})
	after := n.daemon.Programs()
	if len(after) != 1 || after[0].GetProvenance().GetReference() != newImage {
		t.Fatalf("bpfd holds %v, want one program of %s", after, newImage)
	}
	for _, p := range before {
		if p.GetId() == after[0].GetId() {
			t.Errorf("program %d of the old request is still loaded", p.GetId())
		}
	}
}

// TestAgentUpdatesMapReadersInPlace: the config's map reader namespaces
// are the programs' owner's; when only they change, the agent asks bpfd to
// update the owner of the loaded programs, which stay loaded.
func TestAgentUpdatesMapReadersInPlace(t *testing.T) {
	name := k8stest.Name(t)
	testEnv.CreateNode(t, name+"-a", map[string]string{"test": name})
	n := startAgent(t, name+"-a", agent.ReconcilerOptions{})
	cfg := createConfig(t, name, name, n.name)
	waitReport(t, cfg.Name, n.name, v1alpha1.ReasonLoaded)
	readers := func() [][]string {
		var out [][]string
		for _, p := range n.daemon.Programs() {
			out = append(out, p.GetOwner().GetMapReaderNamespaces())
		}
		return out
	}
	if got := readers(); !slices.EqualFunc(got, [][]string{nil, nil}, slices.Equal[[]string]) {
		t.Fatalf("map readers %v, want none", got)
	}
	before, loads := n.daemon.Programs(), n.daemon.Calls("Load")

	editConfig(t, cfg.Name, func(c *v1alpha1.BpfProgramConfig) { c.Spec.MapReaderNamespaces = []string{"web", "apps"} })
	k8stest.Eventually(t, timeout, func() error {
		waitReport(t, cfg.Name, n.name, v1alpha1.ReasonLoaded)
		if got := readers(); !slices.EqualFunc(got, [][]string{{"apps", "web"}, {"apps", "web"}}, slices.Equal[[]string]) {
			return fmt.Errorf("map readers %v, want [apps web] on both programs", got)
		}
		return nil
	})
	after := n.daemon.Programs()
	if n.daemon.Calls("Load") != loads || len(after) != len(before) || after[0].GetId() != before[0].GetId() || after[1].GetId() != before[1].GetId() {
		t.Errorf("changing the map readers reloaded: %d loads (%d before), programs %v (before %v)", n.daemon.Calls("Load"), loads, after, before)
	}
	if n.daemon.Calls("UpdateOwner") != 1 {
		t.Errorf("%d UpdateOwner calls, want 1", n.daemon.Calls("UpdateOwner"))
	}
}

func TestAgentUnloadsWhenTheNodeIsNoLongerSelected(t *testing.T) {
	name := k8stest.Name(t)
	node := testEnv.CreateNode(t, name+"-a", map[string]string{"test": name})
	n := startAgent(t, name+"-a", agent.ReconcilerOptions{})
	cfg := createConfig(t, name, name, n.name)
	bp := waitReport(t, cfg.Name, n.name, v1alpha1.ReasonLoaded)

	node.Labels = map[string]string{"test": name + "-elsewhere"}
	if err := testEnv.Client.Update(context.Background(), node); err != nil {
		t.Fatal(err)
	}
	waitPrograms(t, n.daemon, 0)
	testEnv.WaitGone(t, timeout, bp)
}

func TestAgentUnloadsBeforeTheConfigIsDeleted(t *testing.T) {
	name := k8stest.Name(t)
	testEnv.CreateNode(t, name+"-a", map[string]string{"test": name})
	n := startAgent(t, name+"-a", agent.ReconcilerOptions{})
	cfg := createConfig(t, name, name, n.name)
	bp := waitReport(t, cfg.Name, n.name, v1alpha1.ReasonLoaded)

	if err := testEnv.Client.Delete(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	waitPrograms(t, n.daemon, 0)
	testEnv.WaitGone(t, timeout, bp)
	// The node's finalizer, bpfd-operator's to remove, still holds the
	// config: the agent never writes configs.
	if err := testEnv.Client.Get(context.Background(), client.ObjectKeyFromObject(cfg), cfg); err != nil {
		t.Fatalf("config gone before the operator released it: %v", err)
	}
	if !slices.Contains(cfg.Finalizers, v1alpha1.NodeFinalizer(n.name)) {
		t.Errorf("finalizers %v, want the node's still there", cfg.Finalizers)
	}
	for _, w := range n.writes.Writes() {
		if strings.Contains(w, "BpfProgramConfig") {
			t.Errorf("the agent wrote a config: %s", w)
		}
	}
}

// TestAgentReportsRefusals proves each kind of bpfd error ends up as its
// reason, with bpfd's message, in the node's BpfProgram, and that nothing
// stays loaded.
func TestAgentReportsRefusals(t *testing.T) {
	cases := map[string]struct {
		code       codes.Code
		reason     bpfdv1.ErrorReason
		message    string
		wantReason string
	}{
		"policy":   {codes.PermissionDenied, bpfdv1.ErrorReason_ERROR_REASON_POLICY_DENIED, "no trust-policy rule admits registry.example.com/bpfd/xdp_counter: signed by an untrusted key", v1alpha1.ReasonPolicyDenied},
		"verifier": {codes.FailedPrecondition, bpfdv1.ErrorReason_ERROR_REASON_VERIFIER_REJECTED, "program xdp_counter: verifier: R1 invalid mem access", v1alpha1.ReasonVerifierRejected},
		"pull":     {codes.Unavailable, bpfdv1.ErrorReason_ERROR_REASON_IMAGE_PULL_FAILED, "registry.example.com: connection refused and nothing cached", v1alpha1.ReasonImagePullFailed},
		"attach":   {codes.AlreadyExists, bpfdv1.ErrorReason_ERROR_REASON_ATTACH_FAILED, "eth0: xdp hook taken by a program bpfd does not manage", v1alpha1.ReasonAttachFailed},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			name := k8stest.Name(t)
			testEnv.CreateNode(t, name+"-a", map[string]string{"test": name})
			n := startAgent(t, name+"-a", agent.ReconcilerOptions{})
			n.daemon.Reject("registry.example.com/bpfd/xdp_counter"+digestA, tc.code, tc.reason, tc.message)
			cfg := createConfig(t, name, name, n.name)

			bp := waitReport(t, cfg.Name, n.name, tc.wantReason)
			cond := meta.FindStatusCondition(bp.Status.Conditions, v1alpha1.ConditionReady)
			if cond.Status != metav1.ConditionFalse || cond.Message != "load: "+tc.message {
				t.Errorf("Ready %s %q, want False %q", cond.Status, cond.Message, "load: "+tc.message)
			}
			if len(bp.Status.Programs) != 0 || bp.Status.Digest != "" {
				t.Errorf("status reports programs %v, digest %q after a refusal", bp.Status.Programs, bp.Status.Digest)
			}
			if ps := n.daemon.Programs(); len(ps) != 0 {
				t.Errorf("bpfd holds %d programs after a refusal", len(ps))
			}
		})
	}
}

func TestAgentReportsMissingInterface(t *testing.T) {
	name := k8stest.Name(t)
	testEnv.CreateNode(t, name+"-a", map[string]string{"test": name})
	n := startAgent(t, name+"-a", agent.ReconcilerOptions{})
	n.daemon.SetInterfaces("eth0")
	cfg := createConfig(t, name, name, n.name)
	bp := waitReport(t, cfg.Name, n.name, v1alpha1.ReasonAttachFailed)
	if msg := meta.FindStatusCondition(bp.Status.Conditions, v1alpha1.ConditionReady).Message; !strings.Contains(msg, "interface eth1") {
		t.Errorf("message %q does not name the interface", msg)
	}
	// eth0's request loaded, eth1's failed: the agent unloads eth0's
	// program rather than leave the config half loaded.
	waitPrograms(t, n.daemon, 0)
	// The interface appears; the agent retries with backoff and loads.
	n.daemon.SetInterfaces("eth0", "eth1")
	waitReport(t, cfg.Name, n.name, v1alpha1.ReasonLoaded)
}

// TestAgentConvergesAfterBpfdRestarts: a bpfd that comes back without its
// programs gets them loaded again, and the report says bpfd was gone
// meanwhile.
func TestAgentConvergesAfterBpfdRestarts(t *testing.T) {
	name := k8stest.Name(t)
	testEnv.CreateNode(t, name+"-a", map[string]string{"test": name})
	n := startAgent(t, name+"-a", agent.ReconcilerOptions{ResyncPeriod: 200 * time.Millisecond})
	cfg := createConfig(t, name, name, n.name)
	waitReport(t, cfg.Name, n.name, v1alpha1.ReasonLoaded)
	before := n.daemon.Programs()

	n.daemon.Stop()
	waitReport(t, cfg.Name, n.name, v1alpha1.ReasonDaemonUnavailable)
	n.daemon.Forget()
	n.daemon.Start(t)

	k8stest.Eventually(t, timeout, func() error {
		bp := waitReport(t, cfg.Name, n.name, v1alpha1.ReasonLoaded)
		after := n.daemon.Programs()
		if len(after) != 2 || after[0].GetId() == before[0].GetId() {
			return fmt.Errorf("bpfd holds %v", after)
		}
		if bp.Status.Programs[0].ID != int64(after[0].GetId()) {
			return fmt.Errorf("status reports id %d, bpfd %d", bp.Status.Programs[0].ID, after[0].GetId())
		}
		return nil
	})
}

// TestAgentUnloadsOrphansAtStart: programs an agent loaded for a config that
// was deleted while no agent ran are unloaded when the agent starts; programs
// loaded by others stay.
func TestAgentUnloadsOrphansAtStart(t *testing.T) {
	name := k8stest.Name(t)
	testEnv.CreateNode(t, name+"-a", map[string]string{"test": name})
	d := k8stest.StartDaemon(t)
	dc, err := agent.DialDaemon(d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	ctx := context.Background()
	for _, md := range []map[string]string{
		{agent.MetadataManagedBy: agent.ManagedByAgent, agent.MetadataConfig: name + "-gone", agent.MetadataConfigUID: "uid-gone"},
		{"owner": "bpfctl"},
	} {
		_, err := dc.Load(ctx, &bpfdv1.LoadRequest{
			Bytecode: &bpfdv1.Bytecode{Reference: "registry.example.com/x" + digestA},
			Programs: []*bpfdv1.LoadProgram{{Name: "tp", Type: bpfdv1.ProgramType_PROGRAM_TYPE_TRACEPOINT,
				Attach: &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Tracepoint{Tracepoint: &bpfdv1.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}}}}},
			Metadata: md,
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	testEnv.StartManager(t, ctrl.Options{Cache: agent.CacheOptions(name + "-a")}, func(mgr ctrl.Manager) error {
		return agent.NewReconciler(mgr.GetClient(), dc, name+"-a", agent.ReconcilerOptions{}).SetupWithManager(mgr)
	})
	ps := waitPrograms(t, d, 1)
	if ps[0].GetMetadata()["owner"] != "bpfctl" {
		t.Errorf("bpfd kept %v, want the program bpfctl loaded", ps[0].GetMetadata())
	}
}

// TestAgentDoesNotWriteWhenNothingChanged counts the agent's API writes and
// bpfd loads while it reconciles a converged config again and again.
func TestAgentDoesNotWriteWhenNothingChanged(t *testing.T) {
	name := k8stest.Name(t)
	node := testEnv.CreateNode(t, name+"-a", map[string]string{"test": name})
	n := startAgent(t, name+"-a", agent.ReconcilerOptions{ResyncPeriod: 100 * time.Millisecond})
	cfg := createConfig(t, name, name, n.name)
	waitReport(t, cfg.Name, n.name, v1alpha1.ReasonLoaded)
	// Let the last events of the load settle.
	time.Sleep(500 * time.Millisecond)
	n.writes.Reset()
	loads, lists := n.daemon.Calls("Load"), n.daemon.Calls("List")

	// Reasons to reconcile that change nothing: resyncs (every 100ms), a
	// label on the node the config does not select by, an annotation on the
	// config.
	node.Labels["unrelated"] = "yes"
	if err := testEnv.Client.Update(context.Background(), node); err != nil {
		t.Fatal(err)
	}
	editConfig(t, cfg.Name, func(c *v1alpha1.BpfProgramConfig) { c.Annotations = map[string]string{"note": "hello"} })
	time.Sleep(time.Second)

	if w := n.writes.Writes(); len(w) != 0 {
		t.Errorf("the agent wrote %d times with nothing to change: %v", len(w), w)
	}
	if got := n.daemon.Calls("Load"); got != loads {
		t.Errorf("%d Load calls with nothing to change", got-loads)
	}
	if got := n.daemon.Calls("List"); got < lists+5 {
		t.Fatalf("only %d reconciles in a second; the test proves nothing", got-lists)
	}
}

func TestAgentSharesTheMapOwnersMaps(t *testing.T) {
	name := k8stest.Name(t)
	testEnv.CreateNode(t, name+"-a", map[string]string{"test": name})
	n := startAgent(t, name+"-a", agent.ReconcilerOptions{RetryPeriod: 100 * time.Millisecond})

	// The user of the maps comes first and waits for its owner.
	user := &v1alpha1.BpfProgramConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-user", Finalizers: []string{v1alpha1.NodeFinalizer(n.name)}},
		Spec: v1alpha1.BpfProgramConfigSpec{
			Bytecode: v1alpha1.BytecodeImage{Image: "registry.example.com/bpfd/tc_counter" + digestB},
			Programs: []v1alpha1.Program{{Name: "tcx_counter", Type: "tcx", TCX: &v1alpha1.TCXAttach{
				InterfaceSelector: v1alpha1.InterfaceSelector{PrimaryNodeInterface: true}, Direction: v1alpha1.Ingress,
			}}},
			MapOwnerSelector: &v1alpha1.LabelSelector{MatchLabels: map[string]string{"owner-of": name}},
			NodeSelector:     v1alpha1.LabelSelector{MatchLabels: map[string]string{"test": name}},
		},
	}
	if err := testEnv.Client.Create(context.Background(), user); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeConfig(user.Name) })
	waitReport(t, user.Name, n.name, v1alpha1.ReasonMapOwnerNotReady)

	owner := createConfig(t, name+"-owner", name, n.name)
	editConfig(t, owner.Name, func(c *v1alpha1.BpfProgramConfig) { c.Labels = map[string]string{"owner-of": name} })
	waitReport(t, owner.Name, n.name, v1alpha1.ReasonLoaded)
	bp := waitReport(t, user.Name, n.name, v1alpha1.ReasonLoaded)

	var ownerIDs []uint64
	var userProgram *bpfdv1.Program
	for _, p := range n.daemon.Programs() {
		switch p.GetMetadata()[agent.MetadataConfig] {
		case owner.Name:
			ownerIDs = append(ownerIDs, p.GetId())
		case user.Name:
			userProgram = p
		}
	}
	if userProgram == nil || userProgram.GetMapOwnerId() != slices.Min(ownerIDs) {
		t.Fatalf("user program %v, want map owner %d", userProgram, slices.Min(ownerIDs))
	}
	if got := bp.Status.Programs[0].AttachPoint; got != "eth0 ingress" {
		t.Errorf("attach point %q, want the primary interface, eth0 ingress", got)
	}
}

func TestAgentWithoutDefaultRoute(t *testing.T) {
	name := k8stest.Name(t)
	testEnv.CreateNode(t, name+"-a", map[string]string{"test": name})
	var hasRoute atomic.Bool
	n := startAgent(t, name+"-a", agent.ReconcilerOptions{
		RetryPeriod: 100 * time.Millisecond,
		PrimaryInterface: func() (string, error) {
			if !hasRoute.Load() {
				return "", agent.ErrNoDefaultRoute
			}
			return "ens3", nil
		},
	})
	cfg := createConfig(t, name, name, n.name)
	editConfig(t, cfg.Name, func(c *v1alpha1.BpfProgramConfig) {
		c.Spec.Programs[0].XDP.InterfaceSelector = v1alpha1.InterfaceSelector{PrimaryNodeInterface: true}
	})
	bp := waitReport(t, cfg.Name, n.name, v1alpha1.ReasonAttachFailed)
	if msg := meta.FindStatusCondition(bp.Status.Conditions, v1alpha1.ConditionReady).Message; !strings.Contains(msg, "no default route") {
		t.Errorf("message %q", msg)
	}
	// What the config asked for before (eth0, eth1) is gone too.
	waitPrograms(t, n.daemon, 0)
	hasRoute.Store(true)
	bp = waitReport(t, cfg.Name, n.name, v1alpha1.ReasonLoaded)
	if got := bp.Status.Programs[0].AttachPoint; got != "ens3" {
		t.Errorf("attached to %q, want ens3", got)
	}
}
