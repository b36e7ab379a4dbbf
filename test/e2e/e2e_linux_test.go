package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/bpfd-dev/bpfd/internal/testing/k8stest"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/agent"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// udp is the index of UDP packets in xdp_counter's per-protocol map.
const udp = uint32(17)

// TestEndToEnd runs the cluster's programs through the whole stack: kubectl
// to the API server, bpfd-operator and bpfd-agent, bpfd, the registry and
// the kernel, and back into the objects' status.
func TestEndToEnd(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()

	t.Run("at start the agent unloads what it loaded for a config deleted meanwhile, not others' programs", func(t *testing.T) {
		load := func(md map[string]string) *pb.Program {
			t.Helper()
			resp, err := c.daemon.Load(ctx, &pb.LoadRequest{
				Bytecode: &pb.Bytecode{Reference: c.images["tracepoint"]},
				Programs: []*pb.LoadProgram{{Name: "tracepoint_counter", Type: pb.ProgramType_PROGRAM_TYPE_TRACEPOINT,
					Attach: &pb.AttachSpec{Spec: &pb.AttachSpec_Tracepoint{Tracepoint: &pb.TracepointAttach{Tracepoint: "syscalls/sys_enter_getppid"}}}}},
				Metadata: md,
			})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			return resp.GetPrograms()[0]
		}
		orphan := load(map[string]string{agent.MetadataManagedBy: agent.ManagedByAgent, agent.MetadataConfig: "deleted-while-away", agent.MetadataConfigUID: "gone"})
		others := load(map[string]string{"owner": "someone-with-bpfctl"})

		c.startAgent(t)
		k8stest.Eventually(t, timeout, func() error {
			if ps := c.programsOf(t, "deleted-while-away"); len(ps) != 0 {
				return fmt.Errorf("bpfd still holds %d programs of the deleted config", len(ps))
			}
			return nil
		})
		k8stest.Eventually(t, 10*time.Second, func() error {
			if kernelHasProgram(orphan.GetKernel().GetProgramId()) {
				return fmt.Errorf("the kernel still has the orphan's program %d", orphan.GetKernel().GetProgramId())
			}
			return nil
		})
		if _, err := c.daemon.Get(ctx, &pb.GetRequest{Id: others.GetId()}); err != nil {
			t.Errorf("the program the agent did not load: %v", err)
		}
		if _, err := c.daemon.Unload(ctx, &pb.UnloadRequest{Ids: []uint64{others.GetId()}}); err != nil {
			t.Fatal(err)
		}
	})
	if c.agent == nil {
		t.FailNow()
	}

	t.Run("kubectl apply loads and counts traffic, kubectl delete unloads", func(t *testing.T) {
		c.testApplyAndDelete(t)
	})
	t.Run("refusals end in their reason on the node and in the config", func(t *testing.T) {
		c.testRefusals(t)
	})
	t.Run("a config shares the maps of its map owner", func(t *testing.T) {
		c.testMapOwner(t)
	})
	t.Run("an application reads its counters through csi.bpfd.io, unprivileged", func(t *testing.T) {
		c.testApplication(t)
	})
	t.Run("a tenant's TCX program, applied in its namespace, counts its pod's traffic", func(t *testing.T) {
		c.testTenant(t)
	})
	t.Run("a config deleted while the agent is down is unloaded when it is back", func(t *testing.T) {
		c.testAgentRestart(t)
	})
	t.Run("the node's BpfNode names the pod of a process holding a program bpfd did not load", func(t *testing.T) {
		c.testBpfNode(t)
	})
	t.Run("must-gather collects the cluster's and the node's state, without the registry credentials", func(t *testing.T) {
		c.testMustGather(t)
	})
}

func (c *cluster) testApplyAndDelete(t *testing.T) {
	ctx := context.Background()
	v1, v2 := testutil.NewVethPair(t), testutil.NewVethPair(t)
	manifest := sample(t, "xdp.yaml", func(cfg *v1alpha1.BpfProgramConfig) {
		cfg.Spec.Bytecode.Image = c.images["xdp"]
		cfg.Spec.Programs[0].XDP.InterfaceSelector = v1alpha1.InterfaceSelector{Interfaces: []string{v1.Host, v2.Host}}
	})
	t.Logf("kubectl apply -f xdp.yaml:\n%s", kubectl(t, c.admin, "apply", "-f", manifest))
	const name = "xdp-counter"

	cfg := c.waitConfig(t, name, v1alpha1.ReasonAllNodesLoaded)
	bp := c.waitProgram(t, name, v1alpha1.ReasonLoaded)
	if cfg.Status.NodesSelected != 1 || cfg.Status.NodesLoaded != 1 || cfg.Status.NodesFailed != 0 {
		t.Errorf("config status: %d selected, %d loaded, %d failed; want 1, 1, 0", cfg.Status.NodesSelected, cfg.Status.NodesLoaded, cfg.Status.NodesFailed)
	}

	// What the node reports: the artifact, who signed it, the rule that
	// admitted it, and one program per interface, which the kernel has.
	ref := c.images["xdp"]
	_, digest, _ := strings.Cut(ref, "@")
	st := bp.Status
	if st.Image != ref || st.Digest != digest || st.Signer != c.trusted.Fingerprint || st.Rule != "e2e" || !strings.HasPrefix(st.PolicyFingerprint, "sha256:") {
		t.Errorf("status: image %s, digest %s, signer %s, rule %s, policy %s; want %s, %s, %s, e2e, a fingerprint",
			st.Image, st.Digest, st.Signer, st.Rule, st.PolicyFingerprint, ref, digest, c.trusted.Fingerprint)
	}
	// An administrator reads the same with kubectl: the config's nodes
	// and image, the node's program, its digest and signer.
	rows := getTable(t, c.admin, "bpfprogramconfigs,bpfprograms", "-o", "wide")
	for _, want := range []map[string]string{
		{"NAME": "bpfprogramconfig.bpfd.io/" + name, "READY": "True", "REASON": v1alpha1.ReasonAllNodesLoaded,
			"SELECTED": "1", "LOADED": "1", "FAILED": "0", "IMAGE": ref},
		{"NAME": "bpfprogram.bpfd.io/" + bp.Name, "NODE": c.node, "CONFIG": name, "READY": "True", "REASON": v1alpha1.ReasonLoaded,
			"DIGEST": digest, "SIGNER": c.trusted.Fingerprint},
	} {
		if diff := cmp.Diff(want, row(t, rows, want["NAME"])); diff != "" {
			t.Errorf("kubectl get -o wide (-want +got):\n%s", diff)
		}
	}
	wantAttach := []string{v1.Host, v2.Host}
	slices.Sort(wantAttach)
	var gotAttach []string
	mapIDs := map[int64]bool{}
	for _, p := range st.Programs {
		gotAttach = append(gotAttach, p.AttachPoint)
		checkInKernel(t, p, ebpf.XDP)
		m := mapNamed(t, p, "xdp_stats")
		mapIDs[m.ID] = true
	}
	if !slices.Equal(gotAttach, wantAttach) {
		t.Fatalf("attach points %v, want %v (one program per interface)", gotAttach, wantAttach)
	}
	if len(mapIDs) != 1 {
		t.Errorf("the programs of one config use maps %v, want one shared map", mapIDs)
	}
	// bpfd's List by the agent's metadata finds exactly these programs.
	var listed, reported []int64
	for _, p := range c.programsOf(t, name) {
		listed = append(listed, int64(p.GetId()))
	}
	for _, p := range st.Programs {
		reported = append(reported, p.ID)
	}
	slices.Sort(listed)
	slices.Sort(reported)
	if !slices.Equal(listed, reported) {
		t.Errorf("bpfd lists programs %v for the config, the BpfProgram reports %v", listed, reported)
	}

	// Real traffic on both interfaces, counted in the one map.
	pin := mapNamed(t, st.Programs[0], "xdp_stats").PinPath
	v1.SendUDPFromPeer(t, 10)
	v2.SendUDPFromPeer(t, 20)
	waitCount(t, pin, 30)

	// Converged: the agent keeps checking bpfd (List) and neither loads nor
	// writes to the API server.
	c.checkQuiet(t, name)

	// bpfd restarts: it adopts the programs, which keep counting; the agent
	// finds them current and loads nothing.
	c.restartBpfd(t)
	k8stest.Eventually(t, timeout, func() error {
		after := c.waitProgram(t, name, v1alpha1.ReasonLoaded)
		if diff := slices.Compare(programIDs(after), programIDs(bp)); diff != 0 {
			return fmt.Errorf("after bpfd restarted the BpfProgram reports programs %v, before %v", programIDs(after), programIDs(bp))
		}
		return nil
	})
	time.Sleep(2 * resync)
	if n := c.requests(t, "Load"); n != 0 {
		t.Errorf("%d Load requests to the restarted bpfd, want none (its programs are adopted)", n)
	}
	before := testutil.ReadU64(t, pin, udp)
	v1.SendUDPFromPeer(t, 5)
	waitCount(t, pin, before+5)

	// kubectl delete returns once the config is gone: the agent unloaded
	// and deleted its BpfProgram, then the operator dropped the node's
	// finalizer.
	t.Logf("kubectl delete -f xdp.yaml:\n%s", kubectl(t, c.admin, "delete", "-f", manifest, "--timeout=60s"))
	testEnv.WaitGone(t, timeout, bp)
	if ps := c.programsOf(t, name); len(ps) != 0 {
		t.Errorf("bpfd still holds %d programs of the deleted config", len(ps))
	}
	for _, p := range st.Programs {
		checkGone(t, p, ebpf.XDP)
	}
	if err := testEnv.Client.Get(ctx, client.ObjectKey{Name: name}, &v1alpha1.BpfProgramConfig{}); err == nil {
		t.Error("the config still exists after kubectl delete returned")
	}
}

// testRefusals applies configs that bpfd refuses, one per reason, and
// checks that each node's BpfProgram and the config's status say why and
// that nothing stays loaded.
func (c *cluster) testRefusals(t *testing.T) {
	v := testutil.NewVethPair(t)
	xdp := func(name, iface string) v1alpha1.Program {
		return v1alpha1.Program{Name: name, Type: v1alpha1.ProgramTypeXDP, XDP: &v1alpha1.XDPAttach{
			InterfaceSelector: v1alpha1.InterfaceSelector{Interfaces: []string{iface}},
		}}
	}
	missingIface := "bpfdno" + testutil.RandomSuffix(6)
	cases := map[string]struct {
		image   string
		program v1alpha1.Program
		reason  string
		message string // a part of the message, naming what is wrong
	}{
		"untrusted-signer":  {c.images["untrusted"], xdp("xdp_verdict", v.Host), v1alpha1.ReasonPolicyDenied, "bpfd/untrusted/xdp_verdict"},
		"missing-image":     {c.registry.Host + "/bpfd/xdp_counter@sha256:" + strings.Repeat("0", 64), xdp("xdp_counter", v.Host), v1alpha1.ReasonImagePullFailed, "sha256:0000"},
		"verifier":          {c.images["verifier"], xdp("xdp_unchecked", v.Host), v1alpha1.ReasonVerifierRejected, "xdp_unchecked"},
		"missing-interface": {c.images["xdp"], xdp("xdp_counter", missingIface), v1alpha1.ReasonAttachFailed, missingIface},
		"unknown-program":   {c.images["xdp"], xdp("no_such_program", v.Host), v1alpha1.ReasonInvalidRequest, "no_such_program"},
	}
	ctx := context.Background()
	for name, tc := range cases {
		cfg := &v1alpha1.BpfProgramConfig{
			ObjectMeta: metav1.ObjectMeta{Name: "refused-" + name},
			Spec: v1alpha1.BpfProgramConfigSpec{
				Bytecode: v1alpha1.BytecodeImage{Image: tc.image},
				Programs: []v1alpha1.Program{tc.program},
			},
		}
		if err := testEnv.Client.Create(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.deleteConfig(t, cfg.Name) })
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			config := "refused-" + name
			bp := c.waitProgram(t, config, tc.reason)
			ready := meta.FindStatusCondition(bp.Status.Conditions, v1alpha1.ConditionReady)
			t.Logf("%s: %s", ready.Reason, ready.Message)
			if ready.Status != metav1.ConditionFalse || !strings.Contains(ready.Message, tc.message) {
				t.Errorf("BpfProgram Ready %s: %q, want False naming %q", ready.Status, ready.Message, tc.message)
			}
			if len(bp.Status.Programs) != 0 || bp.Status.Digest != "" {
				t.Errorf("the BpfProgram reports programs %v, digest %q after a refusal", bp.Status.Programs, bp.Status.Digest)
			}
			cfg := c.waitConfig(t, config, v1alpha1.ReasonNodesFailed)
			want := []v1alpha1.NodeFailure{{NodeName: c.node, Reason: tc.reason, Message: ready.Message}}
			if !slices.Equal(cfg.Status.Failures, want) || cfg.Status.NodesFailed != 1 {
				t.Errorf("config failures %+v (%d failed), want %+v", cfg.Status.Failures, cfg.Status.NodesFailed, want)
			}
			if d := meta.FindStatusCondition(cfg.Status.Conditions, v1alpha1.ConditionDegraded); d == nil || d.Status != metav1.ConditionTrue || !strings.Contains(d.Message, tc.reason) {
				t.Errorf("config Degraded %+v, want True naming %s", d, tc.reason)
			}
			if ps := c.programsOf(t, config); len(ps) != 0 {
				t.Errorf("bpfd holds %d programs of a refused config", len(ps))
			}
		})
	}
	// kubectl shows each refusal's reason on the node, and each config failed.
	rows := getTable(t, c.admin, "bpfprogramconfigs,bpfprograms")
	for name, tc := range cases {
		config := "refused-" + name
		for _, want := range []map[string]string{
			{"NAME": "bpfprogramconfig.bpfd.io/" + config, "READY": "False", "REASON": v1alpha1.ReasonNodesFailed, "SELECTED": "1", "LOADED": "0", "FAILED": "1"},
			{"NAME": "bpfprogram.bpfd.io/" + v1alpha1.BpfProgramName(config, c.node), "NODE": c.node, "CONFIG": config, "READY": "False", "REASON": tc.reason},
		} {
			if diff := cmp.Diff(want, row(t, rows, want["NAME"])); diff != "" {
				t.Errorf("kubectl get (-want +got):\n%s", diff)
			}
		}
	}
}

// testMapOwner loads a config whose mapOwnerSelector names another: it waits
// for the owner, then its programs count into the owner's map.
func (c *cluster) testMapOwner(t *testing.T) {
	ctx := context.Background()
	vOwner, vUser := testutil.NewVethPair(t), testutil.NewVethPair(t)
	config := func(name, iface string) *v1alpha1.BpfProgramConfig {
		return &v1alpha1.BpfProgramConfig{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1alpha1.BpfProgramConfigSpec{
				Bytecode: v1alpha1.BytecodeImage{Image: c.images["xdp"]},
				Programs: []v1alpha1.Program{{Name: "xdp_counter", Type: v1alpha1.ProgramTypeXDP, XDP: &v1alpha1.XDPAttach{
					InterfaceSelector: v1alpha1.InterfaceSelector{Interfaces: []string{iface}},
				}}},
			},
		}
	}
	user := config("map-user", vUser.Host)
	user.Spec.MapOwnerSelector = &v1alpha1.LabelSelector{MatchLabels: map[string]string{"e2e.bpfd.io/maps": "counters"}}
	owner := config("map-owner", vOwner.Host)
	owner.Labels = map[string]string{"e2e.bpfd.io/maps": "counters"}

	// The owner goes after the user, whose programs use its maps.
	t.Cleanup(func() {
		c.deleteConfig(t, user.Name)
		c.deleteConfig(t, owner.Name)
	})
	// The user comes first and waits for its owner.
	if err := testEnv.Client.Create(ctx, user); err != nil {
		t.Fatal(err)
	}
	c.waitProgram(t, user.Name, v1alpha1.ReasonMapOwnerNotReady)
	if err := testEnv.Client.Create(ctx, owner); err != nil {
		t.Fatal(err)
	}
	ownerBP := c.waitProgram(t, owner.Name, v1alpha1.ReasonLoaded)
	userBP := c.waitProgram(t, user.Name, v1alpha1.ReasonLoaded)

	ownerMap, userMap := mapNamed(t, ownerBP.Status.Programs[0], "xdp_stats"), mapNamed(t, userBP.Status.Programs[0], "xdp_stats")
	if ownerMap.ID != userMap.ID {
		t.Errorf("the user's xdp_stats is map %d, the owner's %d", userMap.ID, ownerMap.ID)
	}
	ps := c.programsOf(t, user.Name)
	if len(ps) != 1 || int64(ps[0].GetMapOwnerId()) != ownerBP.Status.Programs[0].ID {
		t.Errorf("bpfd lists the user's programs %v, want one whose map owner is %d", ps, ownerBP.Status.Programs[0].ID)
	}
	checkInKernel(t, userBP.Status.Programs[0], ebpf.XDP)
	// Traffic the user's program sees counts in the owner's pinned map.
	vUser.SendUDPFromPeer(t, 15)
	waitCount(t, ownerMap.PinPath, 15)
}

// testAgentRestart deletes a config while the agent is down: the config
// waits (its node's finalizer) and the program stays loaded until the agent
// is back, unloads it and deletes its BpfProgram.
func (c *cluster) testAgentRestart(t *testing.T) {
	ctx := context.Background()
	manifest := sample(t, "tracepoint.yaml", func(cfg *v1alpha1.BpfProgramConfig) {
		cfg.Spec.Bytecode.Image = c.images["tracepoint"]
	})
	kubectl(t, c.admin, "apply", "-f", manifest)
	const name = "tracepoint-counter"
	c.waitConfig(t, name, v1alpha1.ReasonAllNodesLoaded)
	bp := c.waitProgram(t, name, v1alpha1.ReasonLoaded)
	checkInKernel(t, bp.Status.Programs[0], ebpf.TracePoint)

	c.agent.stop(t)
	kubectl(t, c.admin, "delete", "-f", manifest, "--wait=false")
	time.Sleep(2 * resync)
	cfg := &v1alpha1.BpfProgramConfig{}
	if err := testEnv.Client.Get(ctx, client.ObjectKey{Name: name}, cfg); err != nil || cfg.DeletionTimestamp.IsZero() {
		t.Fatalf("with the agent down the config should wait, being deleted: %v, %v", err, cfg.DeletionTimestamp)
	}
	if ps := c.programsOf(t, name); len(ps) != 1 {
		t.Fatalf("with the agent down bpfd holds %d programs of the config, want 1", len(ps))
	}

	c.startAgent(t)
	testEnv.WaitGone(t, timeout, cfg)
	testEnv.WaitGone(t, timeout, bp)
	if ps := c.programsOf(t, name); len(ps) != 0 {
		t.Errorf("bpfd still holds %d programs of the deleted config", len(ps))
	}
	checkGone(t, bp.Status.Programs[0], ebpf.TracePoint)
}

// checkQuiet watches a converged config for a few resync periods: the agent
// lists its programs in bpfd but loads nothing, and nobody writes the config
// or its BpfProgram.
func (c *cluster) checkQuiet(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	time.Sleep(resync) // the last events of the load settle
	cfg, bp := &v1alpha1.BpfProgramConfig{}, &v1alpha1.BpfProgram{}
	get := func() (string, string) {
		t.Helper()
		if err := testEnv.Client.Get(ctx, client.ObjectKey{Name: name}, cfg); err != nil {
			t.Fatal(err)
		}
		if err := testEnv.Client.Get(ctx, client.ObjectKey{Name: v1alpha1.BpfProgramName(name, c.node)}, bp); err != nil {
			t.Fatal(err)
		}
		return cfg.ResourceVersion, bp.ResourceVersion
	}
	cfgVersion, bpVersion := get()
	loads, lists := c.requests(t, "Load"), c.requests(t, "List")
	time.Sleep(3 * resync)
	if v, w := get(); v != cfgVersion || w != bpVersion {
		t.Errorf("with nothing to change the config went from version %s to %s, its BpfProgram from %s to %s", cfgVersion, v, bpVersion, w)
	}
	if n := c.requests(t, "Load") - loads; n != 0 {
		t.Errorf("%d Load requests with nothing to change", n)
	}
	if n := c.requests(t, "List") - lists; n < 2 {
		t.Errorf("%d List requests in %s: the agent did not resync, so this proves nothing", n, 3*resync)
	}
}

// waitConfig waits until the config's Ready condition, on its current
// generation, has reason.
func (c *cluster) waitConfig(t *testing.T, name, reason string) *v1alpha1.BpfProgramConfig {
	t.Helper()
	cfg := &v1alpha1.BpfProgramConfig{}
	k8stest.Eventually(t, timeout, func() error {
		if err := testEnv.Client.Get(context.Background(), client.ObjectKey{Name: name}, cfg); err != nil {
			return err
		}
		ready := meta.FindStatusCondition(cfg.Status.Conditions, v1alpha1.ConditionReady)
		if cfg.Status.ObservedGeneration != cfg.Generation || ready == nil || ready.Reason != reason {
			return fmt.Errorf("config %s: generation %d observed %d, Ready %+v; want reason %s", name, cfg.Generation, cfg.Status.ObservedGeneration, ready, reason)
		}
		return nil
	})
	return cfg
}

// waitProgram waits until the node's BpfProgram of the config reports on
// the config's current generation with reason.
func (c *cluster) waitProgram(t *testing.T, config, reason string) *v1alpha1.BpfProgram {
	t.Helper()
	bp := &v1alpha1.BpfProgram{}
	k8stest.Eventually(t, timeout, func() error {
		cfg := &v1alpha1.BpfProgramConfig{}
		if err := testEnv.Client.Get(context.Background(), client.ObjectKey{Name: config}, cfg); err != nil {
			return err
		}
		if err := testEnv.Client.Get(context.Background(), client.ObjectKey{Name: v1alpha1.BpfProgramName(config, c.node)}, bp); err != nil {
			return err
		}
		ready := meta.FindStatusCondition(bp.Status.Conditions, v1alpha1.ConditionReady)
		if bp.Status.ObservedConfigGeneration != cfg.Generation || ready == nil || ready.Reason != reason {
			return fmt.Errorf("BpfProgram %s: config generation %d observed %d, Ready %+v; want reason %s", bp.Name, cfg.Generation, bp.Status.ObservedConfigGeneration, ready, reason)
		}
		return nil
	})
	return bp
}

// deleteConfig deletes a config and waits until it is gone.
func (c *cluster) deleteConfig(t *testing.T, name string) {
	cfg := &v1alpha1.BpfProgramConfig{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := testEnv.Client.Delete(context.Background(), cfg); client.IgnoreNotFound(err) != nil {
		t.Errorf("delete config %s: %v", name, err)
		return
	}
	testEnv.WaitGone(t, timeout, cfg)
}

// requests returns how many requests of the API method the running bpfd
// served, from its metrics.
func (c *cluster) requests(t *testing.T, method string) int {
	t.Helper()
	resp, err := http.Get("http://" + c.metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("bpfd metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("bpfd metrics: %v", err)
	}
	n := 0
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "bpfd_requests_total{") || !strings.Contains(line, `method="`+method+`"`) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		n += int(v)
	}
	return n
}

// sample returns the path of a copy of config/samples/file, edited.
func sample(t *testing.T, file string, edit func(*v1alpha1.BpfProgramConfig)) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testEnv.Root, "config", "samples", file))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &v1alpha1.BpfProgramConfig{}
	if err := yaml.UnmarshalStrict(data, cfg); err != nil {
		t.Fatalf("config/samples/%s: %v", file, err)
	}
	edit(cfg)
	// Only what a user writes: no status, no creation time.
	out, err := yaml.Marshal(map[string]any{"apiVersion": cfg.APIVersion, "kind": cfg.Kind,
		"metadata": map[string]any{"name": cfg.Name}, "spec": cfg.Spec})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(tempDir(t), file)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkInKernel checks that the kernel has the program a BpfProgram
// reports, of type typ, attached: an XDP program's interface runs an XDP
// program (the hook's dispatcher chain, which reports no links of the
// programs in it), another program's links exist. Its pins must exist.
func checkInKernel(t *testing.T, p v1alpha1.LoadedProgram, typ ebpf.ProgramType) {
	t.Helper()
	prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(p.KernelID))
	if err != nil {
		t.Errorf("program %s on %s: kernel program %d: %v", p.Name, p.AttachPoint, p.KernelID, err)
	} else {
		if prog.Type() != typ {
			t.Errorf("kernel program %d is of type %s, want %s", p.KernelID, prog.Type(), typ)
		}
		prog.Close()
	}
	if typ == ebpf.XDP {
		if !xdpAttached(p.AttachPoint) {
			t.Errorf("program %s: no XDP program runs on %s", p.Name, p.AttachPoint)
		}
	} else if len(p.LinkIDs) == 0 {
		t.Errorf("program %s on %s reports no link", p.Name, p.AttachPoint)
	}
	for _, id := range p.LinkIDs {
		l, err := link.NewFromID(link.ID(id))
		if err != nil {
			t.Errorf("program %s on %s: kernel link %d: %v", p.Name, p.AttachPoint, id, err)
			continue
		}
		l.Close()
	}
	for _, path := range append([]string{p.PinPath}, mapPins(p)...) {
		if _, err := os.Stat(path); err != nil {
			t.Errorf("program %s on %s: pin: %v", p.Name, p.AttachPoint, err)
		}
	}
}

// checkGone checks that the program a BpfProgram reported is gone: its
// pins, then (the kernel frees them a moment after the last reference goes)
// its kernel program, links and, for XDP, the interface's program.
func checkGone(t *testing.T, p v1alpha1.LoadedProgram, typ ebpf.ProgramType) {
	t.Helper()
	for _, path := range append([]string{p.PinPath}, mapPins(p)...) {
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pin %s of %s on %s: %v, want it gone", path, p.Name, p.AttachPoint, err)
		}
	}
	k8stest.Eventually(t, 10*time.Second, func() error {
		if kernelHasProgram(uint32(p.KernelID)) {
			return fmt.Errorf("the kernel still has program %d (%s on %s)", p.KernelID, p.Name, p.AttachPoint)
		}
		for _, id := range p.LinkIDs {
			if l, err := link.NewFromID(link.ID(id)); err == nil {
				l.Close()
				return fmt.Errorf("the kernel still has link %d of %s on %s", id, p.Name, p.AttachPoint)
			}
		}
		if typ == ebpf.XDP && xdpAttached(p.AttachPoint) {
			return fmt.Errorf("an XDP program still runs on %s", p.AttachPoint)
		}
		return nil
	})
}

// xdpAttached reports whether an XDP program runs on the interface.
func xdpAttached(iface string) bool {
	l, err := netlink.LinkByName(iface)
	return err == nil && l.Attrs().Xdp != nil && l.Attrs().Xdp.Attached
}

func kernelHasProgram(id uint32) bool {
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return false
	}
	p.Close()
	return true
}

func mapPins(p v1alpha1.LoadedProgram) []string {
	var pins []string
	for _, m := range p.Maps {
		pins = append(pins, m.PinPath)
	}
	return pins
}

func mapNamed(t *testing.T, p v1alpha1.LoadedProgram, name string) v1alpha1.LoadedMap {
	t.Helper()
	for _, m := range p.Maps {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("program %s on %s reports no map %s: %+v", p.Name, p.AttachPoint, name, p.Maps)
	return v1alpha1.LoadedMap{}
}

func programIDs(bp *v1alpha1.BpfProgram) []int64 {
	var ids []int64
	for _, p := range bp.Status.Programs {
		ids = append(ids, p.ID, p.KernelID)
	}
	return ids
}

// waitCount waits until the pinned map counts at least n UDP packets.
func waitCount(t *testing.T, pin string, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := testutil.ReadU64(t, pin, udp)
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("map %s counts %d UDP packets, want %d", pin, got, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
