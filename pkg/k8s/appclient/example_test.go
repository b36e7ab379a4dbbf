package appclient_test

import (
	"context"
	"fmt"
	"log"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	"github.com/bpfd-dev/bpfd/pkg/k8s/appclient"
)

// The examples run against the test binary's API server (envtest's
// kube-apiserver and etcd, started by TestMain); in a cluster the rest
// config comes from ctrl.GetConfigOrDie() or rest.InClusterConfig().

// counterConfig is an application's config: xdp_counter on every node's
// primary interface, its maps readable by the pods of namespace
// xdp-counter.
func counterConfig() *v1alpha1.BpfProgramConfig {
	return &v1alpha1.BpfProgramConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "xdp-counter", Labels: map[string]string{"app": "xdp-counter"}},
		Spec: v1alpha1.BpfProgramConfigSpec{
			Bytecode: v1alpha1.BytecodeImage{Image: "quay.io/example/xdp_counter@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
			Programs: []v1alpha1.Program{{Name: "xdp_counter", Type: v1alpha1.ProgramTypeXDP,
				XDP: &v1alpha1.XDPAttach{InterfaceSelector: v1alpha1.InterfaceSelector{PrimaryNodeInterface: true}}}},
			MapReaderNamespaces: []string{"xdp-counter"},
		},
	}
}

// An application operator makes its config what its application needs:
// Apply creates it, then updates it in place.
func ExampleClient_Apply() {
	ctx := context.Background()
	c, err := appclient.NewForConfig(testEnv.Config)
	if err != nil {
		log.Fatal(err)
	}
	defer cleanUp("xdp-counter")

	cfg := counterConfig()
	if _, err := c.Apply(ctx, cfg); err != nil {
		log.Fatal(err)
	}
	cfg.Spec.MapReaderNamespaces = append(cfg.Spec.MapReaderNamespaces, "monitoring")
	stored, err := c.Apply(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(stored.Name, stored.Generation, stored.Spec.MapReaderNamespaces)
	// Output: xdp-counter 2 [xdp-counter monitoring]
}

// An application operator reads how its config fares on each node.
func ExampleClient_NodeStatuses() {
	ctx := context.Background()
	c, err := appclient.NewForConfig(testEnv.Config)
	if err != nil {
		log.Fatal(err)
	}
	defer cleanUp("xdp-counter")
	cfg, err := c.Apply(ctx, counterConfig())
	if err != nil {
		log.Fatal(err)
	}
	// The agents of two nodes report.
	agentReports(cfg, "worker-1", v1alpha1.ReasonLoaded, "loaded 1 program")
	agentReports(cfg, "worker-2", v1alpha1.ReasonPolicyDenied, "no rule of the node's trust policy admits quay.io/example/xdp_counter")

	statuses, err := c.NodeStatuses(ctx, "xdp-counter")
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range statuses {
		fmt.Printf("%s: ready %t, %s: %s\n", s.Node, s.Ready, s.Reason, s.Message)
	}
	// Output:
	// worker-1: ready true, Loaded: loaded 1 program
	// worker-2: ready false, PolicyDenied: no rule of the node's trust policy admits quay.io/example/xdp_counter
}

// An application's agent on node worker-1 waits until its node runs the
// config's programs, then learns where their maps are pinned.
func ExampleClient_WaitLoaded() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := appclient.NewForConfig(testEnv.Config)
	if err != nil {
		log.Fatal(err)
	}
	defer cleanUp("xdp-counter")
	cfg, err := c.Apply(ctx, counterConfig())
	if err != nil {
		log.Fatal(err)
	}
	// The node's agent loads the programs a little later.
	go func() {
		time.Sleep(100 * time.Millisecond)
		agentReports(cfg, "worker-1", v1alpha1.ReasonLoaded, "loaded 1 program")
	}()

	bp, err := c.WaitLoaded(ctx, "xdp-counter", "worker-1") // the node from the downward API
	if err != nil {
		log.Fatal(err) // appclient.ErrRefused: the node's policy or kernel said no
	}
	for _, p := range bp.Status.Programs {
		for _, m := range p.Maps {
			fmt.Println(p.Name, p.AttachPoint, m.Name, m.PinPath)
		}
	}
	// Output: xdp_counter eth0 xdp_stats /run/bpfd/fs/7/maps/xdp_stats
}

// nodeProgram is the BpfProgram of xdp-counter that node's agent writes.
func nodeProgram(node, reason, message string) *v1alpha1.BpfProgram {
	status := metav1.ConditionFalse
	bp := &v1alpha1.BpfProgram{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.BpfProgramName("xdp-counter", node)},
		Spec:       v1alpha1.BpfProgramSpec{NodeName: node, ConfigName: "xdp-counter"},
		Status:     v1alpha1.BpfProgramStatus{ObservedConfigGeneration: 1},
	}
	if reason == v1alpha1.ReasonLoaded {
		status = metav1.ConditionTrue
		bp.Status.Programs = []v1alpha1.LoadedProgram{{Name: "xdp_counter", Type: v1alpha1.ProgramTypeXDP, AttachPoint: "eth0", ID: 7,
			Maps: []v1alpha1.LoadedMap{{Name: "xdp_stats", ID: 31, PinPath: "/run/bpfd/fs/7/maps/xdp_stats"}}}}
	}
	bp.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: status, Reason: reason, Message: message,
		LastTransitionTime: metav1.Now(), ObservedGeneration: 1}}
	return bp
}

// agentReports writes node's BpfProgram of cfg as its agent does: created,
// then its status for the config's generation.
func agentReports(cfg *v1alpha1.BpfProgramConfig, node, reason, message string) {
	ctx := context.Background()
	bp := nodeProgram(node, reason, message)
	bp.Status.ObservedConfigGeneration = cfg.Generation
	status := bp.Status
	if err := testEnv.Client.Create(ctx, bp); err != nil {
		log.Fatal(err)
	}
	bp.Status = status
	if err := testEnv.Client.Status().Update(ctx, bp); err != nil {
		log.Fatal(err)
	}
}

// cleanUp deletes the config named name and its BpfPrograms.
func cleanUp(name string) {
	ctx := context.Background()
	if err := testEnv.Client.DeleteAllOf(ctx, &v1alpha1.BpfProgram{}, client.MatchingFields{"spec.configName": name}); err != nil {
		log.Fatal(err)
	}
	cfg := &v1alpha1.BpfProgramConfig{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := client.IgnoreNotFound(testEnv.Client.Delete(ctx, cfg)); err != nil {
		log.Fatal(err)
	}
}
