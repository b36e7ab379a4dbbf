package appclient_test

import (
	"context"
	"fmt"
	"log"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	"github.com/bpfd-dev/bpfd/pkg/k8s/appclient"
)

// counterConfig is an application's config: xdp_counter on every node's
// primary interface, its maps readable by the pods of namespace
// xdp-counter.
func counterConfig() *v1alpha1.BpfProgramConfig {
	return &v1alpha1.BpfProgramConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "xdp-counter", Labels: map[string]string{"app": "xdp-counter"}, Generation: 1},
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
	c := appclient.New(fakeClient()) // appclient.NewForConfig(restConfig) in a cluster

	cfg := counterConfig()
	if _, err := c.Apply(ctx, cfg); err != nil {
		log.Fatal(err)
	}
	cfg.Spec.MapReaderNamespaces = append(cfg.Spec.MapReaderNamespaces, "monitoring")
	stored, err := c.Apply(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(stored.Name, stored.Spec.MapReaderNamespaces)
	// Output: xdp-counter [xdp-counter monitoring]
}

// An application operator reads how its config fares on each node.
func ExampleClient_NodeStatuses() {
	ctx := context.Background()
	c := appclient.New(fakeClient(
		counterConfig(),
		nodeProgram("worker-1", v1alpha1.ReasonLoaded, "loaded 1 program"),
		nodeProgram("worker-2", v1alpha1.ReasonPolicyDenied, "no rule of the node's trust policy admits quay.io/example/xdp_counter"),
	))
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
	c := appclient.New(fakeClient(counterConfig(), nodeProgram("worker-1", v1alpha1.ReasonLoaded, "loaded 1 program")))

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

// nodeProgram is the BpfProgram of xdp-counter that node's agent wrote.
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
	bp.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: status, Reason: reason, Message: message}}
	return bp
}

// fakeClient is an in-memory API server holding objs, for the examples;
// a real client comes from appclient.NewForConfig.
func fakeClient(objs ...client.Object) client.WithWatch {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		log.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithStatusSubresource(&v1alpha1.BpfProgramConfig{}, &v1alpha1.BpfProgram{}).
		// The API server selects by these fields; the fake needs indexes.
		WithIndex(&v1alpha1.BpfProgram{}, "spec.configName", func(o client.Object) []string {
			return []string{o.(*v1alpha1.BpfProgram).Spec.ConfigName}
		}).
		WithIndex(&v1alpha1.BpfProgram{}, "metadata.name", func(o client.Object) []string { return []string{o.GetName()} }).
		WithIndex(&v1alpha1.BpfProgramConfig{}, "metadata.name", func(o client.Object) []string { return []string{o.GetName()} }).
		Build()
}
