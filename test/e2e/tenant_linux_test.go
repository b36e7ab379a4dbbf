package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bpfd-dev/bpfd/internal/testing/k8stest"
	"github.com/bpfd-dev/bpfd/internal/testing/testimage"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/agent"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/operator"
	"github.com/bpfd-dev/bpfd/pkg/verify"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// tenantNode is one node for tenants' programs: a real bpfd on this host
// whose trust policy admits the tenant namespaces for the registry's
// images, a Node object, bpfd-agent's tenant reconciler finding pods'
// processes in the host's /proc, and bpfd-operator's tenant reconciler.
type tenantNode struct {
	name   string
	daemon pb.BpfdClient
	// nsA and nsB are the two tenants' namespaces. images: "tcx" (tc_counter)
	// and "uprobe" (uprobe_counter), admitted for both, and "b-only"
	// (tc_counter, admitted for nsB alone).
	nsA, nsB string
	images   map[string]string
	bpfd     *process
	// scanner is the agent's: the host's /proc, with a hook the tests set.
	scanner *hookedScanner
}

// hookedScanner is a PodScanner of the host's /proc that calls after, when
// set, between its scan and the agent's use of it: what happens there
// happens between the agent's look at a pod and bpfd's.
type hookedScanner struct {
	agent.ProcScanner
	mu    sync.Mutex
	after func(uids []string)
}

func (h *hookedScanner) ScanPods(uids []string) (map[string]agent.PodProcesses, error) {
	m, err := h.ProcScanner.ScanPods(uids)
	h.mu.Lock()
	after := h.after
	h.mu.Unlock()
	if after != nil {
		after(uids)
	}
	return m, err
}

func (h *hookedScanner) setAfter(f func(uids []string)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.after = f
}

// startTenantNode starts a tenantNode; everything stops, and every program
// is unloaded, when t ends.
func startTenantNode(t *testing.T) *tenantNode {
	t.Helper()
	testutil.RequirePrivileged(t)
	testutil.RequireKernelFeature(t, testutil.FeatureTCX)
	ctx := context.Background()
	suffix := testutil.RandomSuffix(6)
	n := &tenantNode{name: "tenant-node-" + suffix, nsA: "tenant-a-" + suffix, nsB: "tenant-b-" + suffix, images: map[string]string{},
		scanner: &hookedScanner{ProcScanner: agent.ProcScanner{ProcDir: "/proc"}}}
	bins := buildCommands(t, "bpfd")

	reg := testutil.StartRegistry(t)
	dir := tempDir(t)
	key, err := testimage.NewKey(dir, "tenants")
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range map[string]struct{ repo, object string }{
		"tcx":    {"bpfd/tc_counter", "bytecode/tc_counter.bpf.o"},
		"b-only": {"bpfd/b-only/tc_counter", "bytecode/tc_counter.bpf.o"},
		"uprobe": {"bpfd/uprobe_counter", "bytecode/uprobe_counter.bpf.o"},
	} {
		repo := a.repo
		ref, err := testimage.Build(ctx, reg.Host+"/"+repo+":v1", filepath.Join(testEnv.Root, a.object))
		if err != nil {
			t.Fatalf("push %s: %v", repo, err)
		}
		if err := key.Sign(ctx, ref, verify.FormatBundle); err != nil {
			t.Fatalf("sign %s: %v", ref, err)
		}
		n.images[name] = ref
	}
	// The first rule whose images match governs: b-only's admits nsB alone.
	policy := fmt.Sprintf(`apiVersion: bpfd.io/v1alpha1
kind: TrustPolicy
default: deny
rules:
- name: b-only
  images: ["%[1]s/bpfd/b-only/**"]
  namespaces: [%[3]s]
  authorities: [{key: {path: %[4]s}}]
- name: tenants
  images: ["%[1]s/bpfd/**"]
  namespaces: [%[2]s, %[3]s]
  authorities: [{key: {path: %[4]s}}]
`, reg.Host, n.nsA, n.nsB, key.PubFile)
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bpfd.yaml"), []byte("apiVersion: bpfd.io/v1alpha1\nkind: DaemonConfig\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "bpfd.sock")
	t.Cleanup(func() { unmountUnder(dir) })
	n.bpfd = startProcess(t, "bpfd", filepath.Join(bins, "bpfd"), []string{
		"--config=" + filepath.Join(dir, "bpfd.yaml"), "--socket=" + socket, "--state-dir=" + filepath.Join(dir, "state"),
		"--bpffs=" + filepath.Join(dir, "fs"), "--policy=" + filepath.Join(dir, "policy.yaml"),
	}, []string{"HOME=" + dir}) // no registry credentials there
	n.bpfd.stopAtEnd(t)
	waitServing(t, n.bpfd, socket)
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	n.daemon = pb.NewBpfdClient(conn)
	// Runs before bpfd stops: nothing stays loaded.
	t.Cleanup(func() { n.unloadAll(t) })

	for _, ns := range []string{n.nsA, n.nsB} {
		if err := testEnv.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	ensureTenantGrant(t)
	testEnv.CreateNode(t, n.name, map[string]string{"test": n.name})

	dc, err := agent.DialDaemon(socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dc.Close() })
	opts := agent.ReconcilerOptions{ResyncPeriod: 2 * time.Second, RetryPeriod: 500 * time.Millisecond}
	testEnv.StartManager(t, ctrl.Options{Cache: agent.CacheOptions(n.name)}, func(mgr ctrl.Manager) error {
		return agent.NewTenantReconciler(mgr.GetClient(), dc, n.name, n.scanner, opts).SetupWithManager(mgr)
	})
	testEnv.StartManager(t, ctrl.Options{}, func(mgr ctrl.Manager) error {
		return operator.NewTenantConfigReconciler(mgr.GetClient(), mgr.GetAPIReader()).SetupWithManager(ctx, mgr)
	})
	return n
}

// ensureTenantGrant makes sure the cluster's BpfTenantGrant exists, which
// the bpfd-tenant-grants admission policy (when config/default is applied)
// needs.
func ensureTenantGrant(t *testing.T) {
	t.Helper()
	g := &v1alpha1.BpfTenantGrant{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.TenantGrantName}}
	if err := testEnv.Client.Create(context.Background(), g); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func (n *tenantNode) unloadAll(t *testing.T) {
	resp, err := n.daemon.List(context.Background(), &pb.ListRequest{})
	if err != nil {
		t.Errorf("list programs: %v", err)
		return
	}
	var ids []uint64
	for _, p := range resp.GetPrograms() {
		ids = append(ids, p.GetId())
	}
	if len(ids) > 0 {
		if _, err := n.daemon.Unload(context.Background(), &pb.UnloadRequest{Ids: ids}); err != nil {
			t.Errorf("unload %v: %v", ids, err)
		}
	}
}

// simPod is a pod as the kubelet and a CNI plugin lay one out on this
// host: a Pod object on the node, a network namespace with a veth to the
// host, and a process in a cgroup named after the pod's uid and its
// container's id, in that namespace.
type simPod struct {
	pod  *corev1.Pod
	veth *testutil.VethPair
	proc *testutil.PodProcess
}

// startPod creates a pod named name in namespace with labels on node and
// runs its container "app".
func startPod(t *testing.T, namespace, name, node string, labels map[string]string) *simPod {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/app:v1"}},
			TerminationGracePeriodSeconds: new(int64)},
	}
	if err := testEnv.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testEnv.Client.Delete(context.Background(), pod) })
	p := &simPod{pod: pod, veth: testutil.NewVethPair(t)}
	p.proc = testutil.StartPodProcessIn(t, testutil.CgroupDriverSystemd, string(pod.UID), p.veth.Netns)
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "app", ContainerID: "containerd://" + p.proc.ContainerID, Ready: true, Image: "registry.example.com/app:v1",
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
	}}}
	if err := testEnv.Client.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	return p
}

// tenantTCX returns a tenant config of tc_counter's TCX program on
// interface iface, ingress, in the pods of namespace podSelector selects,
// on node.
func tenantTCX(namespace, name, image, node, iface string, podSelector v1alpha1.LabelSelector) *v1alpha1.BpfTenantProgramConfig {
	return &v1alpha1.BpfTenantProgramConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: v1alpha1.BpfTenantProgramConfigSpec{
			Bytecode: v1alpha1.BytecodeImage{Image: image},
			Programs: []v1alpha1.TenantProgram{{Name: "tcx_counter", Type: v1alpha1.ProgramTypeTCX, TCX: &v1alpha1.TCXAttach{
				InterfaceSelector: v1alpha1.InterfaceSelector{Interfaces: []string{iface}}, Direction: v1alpha1.Ingress,
			}}},
			PodSelector:  podSelector,
			NodeSelector: v1alpha1.LabelSelector{MatchLabels: map[string]string{"test": node}},
		},
	}
}

func createTenantConfig(t *testing.T, cfg *v1alpha1.BpfTenantProgramConfig) {
	t.Helper()
	if err := testEnv.Client.Create(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		testEnv.Client.Delete(context.Background(), cfg)
		testEnv.WaitGone(t, timeout, cfg)
	})
}

// waitTenantReport waits until the node's BpfTenantProgram of the config
// reports on its current generation with reason, and returns it.
func (n *tenantNode) waitTenantReport(t *testing.T, cfg *v1alpha1.BpfTenantProgramConfig, reason string, check func(*v1alpha1.BpfTenantProgram) error) *v1alpha1.BpfTenantProgram {
	t.Helper()
	btp := &v1alpha1.BpfTenantProgram{}
	k8stest.Eventually(t, timeout, func() error {
		cur := &v1alpha1.BpfTenantProgramConfig{}
		if err := testEnv.Client.Get(context.Background(), client.ObjectKeyFromObject(cfg), cur); err != nil {
			return err
		}
		key := client.ObjectKey{Namespace: cfg.Namespace, Name: v1alpha1.BpfProgramName(cfg.Name, n.name)}
		if err := testEnv.Client.Get(context.Background(), key, btp); err != nil {
			return err
		}
		c := meta.FindStatusCondition(btp.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Reason != reason || btp.Status.ObservedConfigGeneration != cur.Generation {
			return fmt.Errorf("BpfTenantProgram %s: Ready %+v on generation %d, want reason %s on %d", key, c, btp.Status.ObservedConfigGeneration, reason, cur.Generation)
		}
		if check != nil {
			return check(btp)
		}
		return nil
	})
	return btp
}

// podsOf returns the pods a report's programs are attached in.
func podsOf(btp *v1alpha1.BpfTenantProgram) []string {
	var pods []string
	for _, p := range btp.Status.Programs {
		pods = append(pods, p.Pod)
	}
	slices.Sort(pods)
	return pods
}

func wantPods(want ...string) func(*v1alpha1.BpfTenantProgram) error {
	slices.Sort(want)
	return func(btp *v1alpha1.BpfTenantProgram) error {
		if got := podsOf(btp); !slices.Equal(got, want) {
			return fmt.Errorf("programs attached in pods %v, want %v", got, want)
		}
		return nil
	}
}

// TestTenancy loads tenants' programs through the agent and a real bpfd:
// each attaches in its own namespace's pods only, whatever its selector
// says, and the node's trust policy speaks for the node.
func TestTenancy(t *testing.T) {
	n := startTenantNode(t)
	ctx := context.Background()
	podA := startPod(t, n.nsA, "app", n.name, map[string]string{"app": "web"})
	podB := startPod(t, n.nsB, "app", n.name, map[string]string{"app": "web"})

	t.Run("tenant A's TCX program attaches in A's pod and counts A's traffic only", func(t *testing.T) {
		// The selector selects every pod; B's pod carries the same labels.
		cfg := tenantTCX(n.nsA, "counter", n.images["tcx"], n.name, podA.veth.Peer, v1alpha1.LabelSelector{})
		createTenantConfig(t, cfg)
		btp := n.waitTenantReport(t, cfg, v1alpha1.ReasonLoaded, wantPods("app"))
		if len(btp.Status.Programs) != 1 {
			t.Fatalf("%d programs loaded, want 1 (A's pod): %+v", len(btp.Status.Programs), btp.Status.Programs)
		}
		resp, err := n.daemon.List(ctx, &pb.ListRequest{Selector: map[string]string{agent.MetadataNamespace: n.nsA}})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetPrograms()) != 1 {
			t.Fatalf("bpfd holds %d programs of tenant A, want 1", len(resp.GetPrograms()))
		}
		p := resp.GetPrograms()[0]
		if got, want := p.GetOwner().GetNamespace(), n.nsA; got != want {
			t.Errorf("owner namespace %q, want %q", got, want)
		}
		if got, want := p.GetAttach().GetTcx().GetNetns(), fmt.Sprintf("/proc/%d/ns/net", podA.proc.PID); got != want {
			t.Errorf("attached in netns %q, want A's pod's %q", got, want)
		}
		pin := mapNamed(t, btp.Status.Programs[0], "tc_stats").PinPath
		podA.veth.SendUDP(t, 25)
		waitCount(t, pin, 25)
		counted := testutil.ReadU64(t, pin, udp)
		// B's pod's traffic both ways, A's pod's own traffic out (which
		// ingress does not see), then 5 more into A's pod, which arrive
		// after the rest and must be all that is added.
		podB.veth.SendUDP(t, 40)
		podB.veth.SendUDPFromPeer(t, 30)
		podA.veth.SendUDPFromPeer(t, 20)
		podA.veth.SendUDP(t, 5)
		waitCount(t, pin, counted+5)
		if got := testutil.ReadU64(t, pin, udp); got != counted+5 {
			t.Errorf("A's counter went from %d to %d, want %d: it counted others' traffic", counted, got, counted+5)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	t.Run("tenant A naming B's pod's interface or a node interface attaches nowhere", func(t *testing.T) {
		for i, iface := range []string{podB.veth.Peer, podA.veth.Host} {
			cfg := tenantTCX(n.nsA, fmt.Sprintf("elsewhere-%d", i), n.images["tcx"], n.name, iface, v1alpha1.LabelSelector{})
			createTenantConfig(t, cfg)
			n.waitTenantReport(t, cfg, v1alpha1.ReasonAttachFailed, nil)
			resp, err := n.daemon.List(ctx, &pb.ListRequest{Selector: map[string]string{agent.MetadataNamespace: n.nsA, agent.MetadataConfig: cfg.Name}})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.GetPrograms()) != 0 {
				t.Errorf("interface %s: bpfd holds %d programs of the config", iface, len(resp.GetPrograms()))
			}
		}
	})
	t.Run("tenant A's uprobe instruments A's process, not the same binary run by B or the node", func(t *testing.T) {
		cfg := &v1alpha1.BpfTenantProgramConfig{
			ObjectMeta: metav1.ObjectMeta{Namespace: n.nsA, Name: "uprobe"},
			Spec: v1alpha1.BpfTenantProgramConfigSpec{
				Bytecode: v1alpha1.BytecodeImage{Image: n.images["uprobe"]},
				Programs: []v1alpha1.TenantProgram{{Name: "uprobe_counter", Type: v1alpha1.ProgramTypeUprobe, Uprobe: &v1alpha1.TenantUprobeAttach{
					// The container's root is the host's here: the same path.
					Container: "app", Target: testutil.UprobeTargetBinary(t), Offset: int64(testutil.UprobeTargetOffset(t)),
				}}},
				PodSelector:  v1alpha1.LabelSelector{},
				NodeSelector: v1alpha1.LabelSelector{MatchLabels: map[string]string{"test": n.name}},
			},
		}
		createTenantConfig(t, cfg)
		btp := n.waitTenantReport(t, cfg, v1alpha1.ReasonLoaded, wantPods("app"))
		ps := n.programsOfTenant(t, cfg)
		if len(ps) != 1 || ps[0].GetAttach().GetUprobe().GetContainerPid() != int32(podA.proc.PID) {
			t.Fatalf("bpfd holds %v, want one uprobe in A's container (pid %d)", ps, podA.proc.PID)
		}
		pin := mapNamed(t, btp.Status.Programs[0], "uprobe_calls").PinPath
		podA.proc.CallUprobeTarget(t, 5)
		podB.proc.CallUprobeTarget(t, 9)
		testutil.CallUprobeTarget(t, 11) // the same binary on the node
		if got := testutil.ReadU64(t, pin, 0); got != 5 {
			t.Errorf("the uprobe counted %d calls, want A's 5 (not B's 9 nor the node's 11)", got)
		}
	})
	t.Run("a trust policy that does not admit namespace A for the image gives PolicyDenied", func(t *testing.T) {
		cfg := tenantTCX(n.nsA, "b-only", n.images["b-only"], n.name, podA.veth.Peer, v1alpha1.LabelSelector{})
		createTenantConfig(t, cfg)
		btp := n.waitTenantReport(t, cfg, v1alpha1.ReasonPolicyDenied, nil)
		msg := meta.FindStatusCondition(btp.Status.Conditions, v1alpha1.ConditionReady).Message
		if !strings.Contains(msg, "namespace-not-admitted") {
			t.Errorf("PolicyDenied message %q does not say namespace-not-admitted", msg)
		}
		// The same image loads for B, which its rule admits.
		cfgB := tenantTCX(n.nsB, "b-only", n.images["b-only"], n.name, podB.veth.Peer, v1alpha1.LabelSelector{})
		createTenantConfig(t, cfgB)
		n.waitTenantReport(t, cfgB, v1alpha1.ReasonLoaded, wantPods("app"))
	})
}

// programsOfTenant returns what bpfd holds for the tenant config.
func (n *tenantNode) programsOfTenant(t *testing.T, cfg *v1alpha1.BpfTenantProgramConfig) []*pb.Program {
	t.Helper()
	resp, err := n.daemon.List(context.Background(), &pb.ListRequest{Selector: map[string]string{
		agent.MetadataManagedBy: agent.ManagedByAgentTenant, agent.MetadataNamespace: cfg.Namespace, agent.MetadataConfig: cfg.Name,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetPrograms()
}

// TestTenantHostileSelectors: whatever a tenant's podSelector says, its
// programs attach in its own namespace's pods on the node and nowhere else.
func TestTenantHostileSelectors(t *testing.T) {
	n := startTenantNode(t)
	podA := startPod(t, n.nsA, "app", n.name, map[string]string{"app": "web"})
	// B's pod carries every label A's selectors below name, B's namespace's
	// name among them.
	podB := startPod(t, n.nsB, "app", n.name, map[string]string{"app": "web", "escape": "yes", "kubernetes.io/metadata.name": n.nsB})

	nothing := func(btp *v1alpha1.BpfTenantProgram) error {
		if len(btp.Status.Programs) != 0 {
			return fmt.Errorf("%d programs reported, want none", len(btp.Status.Programs))
		}
		return nil
	}
	cases := map[string]v1alpha1.LabelSelector{
		"matchExpressions on the namespace's name label": {MatchExpressions: []v1alpha1.LabelSelectorRequirement{
			{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: []string{n.nsB}},
		}},
		"a label only B's pod has": {MatchLabels: map[string]string{"escape": "yes"}},
		"NotIn A's own labels":     {MatchExpressions: []v1alpha1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"web"}}}},
	}
	i := 0
	for name, sel := range cases {
		i++
		t.Run(name, func(t *testing.T) {
			// B's pod's interface: were B's pod selected, the program
			// would attach there, and bpfd would hold it.
			cfg := tenantTCX(n.nsA, fmt.Sprintf("hostile-%d", i), n.images["tcx"], n.name, podB.veth.Peer, sel)
			createTenantConfig(t, cfg)
			n.waitTenantReport(t, cfg, v1alpha1.ReasonLoaded, nothing)
			if ps := n.programsOfTenant(t, cfg); len(ps) != 0 {
				t.Errorf("bpfd holds %d programs of the config", len(ps))
			}
		})
	}
	t.Run("the empty selector selects A's pods only", func(t *testing.T) {
		cfg := tenantTCX(n.nsA, "empty", n.images["tcx"], n.name, podA.veth.Peer, v1alpha1.LabelSelector{})
		createTenantConfig(t, cfg)
		n.waitTenantReport(t, cfg, v1alpha1.ReasonLoaded, wantPods("app"))
		ps := n.programsOfTenant(t, cfg)
		if len(ps) != 1 || ps[0].GetAttach().GetTcx().GetNetns() != fmt.Sprintf("/proc/%d/ns/net", podA.proc.PID) {
			t.Errorf("bpfd holds %v, want one program in A's pod's netns", ps)
		}
	})
	t.Run("a pod of another node is not selected though its processes run here, until it moves here; deleted, its programs go", func(t *testing.T) {
		sel := v1alpha1.LabelSelector{MatchLabels: map[string]string{"app": "mover"}}
		elsewhere := startPod(t, n.nsA, "mover", "another-node", map[string]string{"app": "mover"})
		cfg := tenantTCX(n.nsA, "mover", n.images["tcx"], n.name, elsewhere.veth.Peer, sel)
		createTenantConfig(t, cfg)
		n.waitTenantReport(t, cfg, v1alpha1.ReasonLoaded, nothing)
		if ps := n.programsOfTenant(t, cfg); len(ps) != 0 {
			t.Fatalf("bpfd holds %d programs for a pod of another node", len(ps))
		}
		// The pod moves: deleted there, made again here (a new uid).
		if err := testEnv.Client.Delete(context.Background(), elsewhere.pod); err != nil {
			t.Fatal(err)
		}
		testEnv.WaitGone(t, timeout, elsewhere.pod)
		here := startPod(t, n.nsA, "mover", n.name, map[string]string{"app": "mover"})
		// The operator may be writing the config's status meanwhile.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur := &v1alpha1.BpfTenantProgramConfig{}
			if err := testEnv.Client.Get(context.Background(), client.ObjectKeyFromObject(cfg), cur); err != nil {
				return err
			}
			cur.Spec.Programs[0].TCX.InterfaceSelector.Interfaces = []string{here.veth.Peer}
			return testEnv.Client.Update(context.Background(), cur)
		})
		if err != nil {
			t.Fatal(err)
		}
		n.waitTenantReport(t, cfg, v1alpha1.ReasonLoaded, wantPods("mover"))
		ps := n.programsOfTenant(t, cfg)
		if len(ps) != 1 || ps[0].GetAttach().GetTcx().GetNetns() != fmt.Sprintf("/proc/%d/ns/net", here.proc.PID) {
			t.Fatalf("bpfd holds %v, want one program in the moved pod's netns", ps)
		}
		// Deleted (the kubelet tears it down after): its programs go.
		if err := testEnv.Client.Delete(context.Background(), here.pod); err != nil {
			t.Fatal(err)
		}
		n.waitTenantReport(t, cfg, v1alpha1.ReasonLoaded, nothing)
		if ps := n.programsOfTenant(t, cfg); len(ps) != 0 {
			t.Errorf("bpfd holds %d programs of a deleted pod", len(ps))
		}
	})
}

// TestTenantPodDeletedMidLoad: a pod deleted, its process gone, between the
// agent's scan and bpfd's attach: nothing stays loaded, and the report ends
// with the pod gone.
func TestTenantPodDeletedMidLoad(t *testing.T) {
	n := startTenantNode(t)
	victim := startPod(t, n.nsA, "victim", n.name, map[string]string{"app": "victim"})
	var once sync.Once
	var fired atomic.Bool
	n.scanner.setAfter(func(uids []string) {
		if !slices.Contains(uids, string(victim.pod.UID)) {
			return
		}
		once.Do(func() {
			fired.Store(true)
			if err := testEnv.Client.Delete(context.Background(), victim.pod); err != nil {
				t.Errorf("delete the pod mid-load: %v", err)
			}
			if err := syscall.Kill(victim.proc.PID, syscall.SIGKILL); err != nil {
				t.Errorf("kill the pod's process mid-load: %v", err)
			}
			// Gone before bpfd looks: the kernel tears down its namespaces
			// as it exits.
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if _, err := os.Stat(fmt.Sprintf("/proc/%d/ns/net", victim.proc.PID)); err != nil {
					return
				}
			}
		})
	})
	cfg := tenantTCX(n.nsA, "victim", n.images["tcx"], n.name, victim.veth.Peer, v1alpha1.LabelSelector{MatchLabels: map[string]string{"app": "victim"}})
	createTenantConfig(t, cfg)
	n.waitTenantReport(t, cfg, v1alpha1.ReasonLoaded, func(btp *v1alpha1.BpfTenantProgram) error {
		if len(btp.Status.Programs) != 0 {
			return fmt.Errorf("%d programs reported, want none", len(btp.Status.Programs))
		}
		return nil
	})
	if !fired.Load() {
		t.Fatal("the agent never scanned the pod: nothing was deleted mid-load")
	}
	if ps := n.programsOfTenant(t, cfg); len(ps) != 0 {
		t.Errorf("bpfd holds %d programs of a pod deleted mid-load", len(ps))
	}
}
