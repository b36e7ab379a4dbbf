package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/bpfd-dev/bpfd/internal/testing/k8stest"
	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/agent"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/operator"
)

var (
	k8sNodes   = flag.Int("k8s-nodes", 100, "Node objects, each with an agent and an in-memory bpfd, in the k8s rows")
	k8sConfigs = flag.Int("k8s-configs", 20, "BpfProgramConfigs selecting every node in the k8s rows")
	k8sTimeout = flag.Duration("k8s-timeout", 10*time.Minute, "how long each k8s row waits for convergence")
	k8sIdle    = flag.Duration("k8s-idle", 30*time.Second, "how long the idle row counts requests after every config is Ready")
)

func init() {
	groups = append(groups, group{name: "k8s", setup: k8sRows})
}

const (
	// benchLabel marks the bench's nodes; its configs select them by it.
	benchLabel = "bpfd.io/bench"
	// Controller names, as controller-runtime's metrics label them.
	agentController    = "bpfd-agent"
	operatorController = "bpfprogramconfig"
	// quiet is how long no request may be sent for a phase to count as
	// settled, and settleLimit how long the bench waits for that.
	quiet       = 2 * time.Second
	settleLimit = 30 * time.Second
	pollEvery   = 100 * time.Millisecond
)

// k8sScale is a control plane with nodes, each with an agent and its
// in-memory bpfd, and the operator's config controller, all in this process.
type k8sScale struct {
	env     *k8stest.Env
	sockets string // where the in-memory bpfds listen
	nodes   []string
	daemons []*k8stest.Daemon
	clients []*agent.DaemonClient
	configs []string

	agentReqs, operatorReqs *requestCounter

	cancel  context.CancelFunc
	running sync.WaitGroup
	mgrErrs chan error

	// phase is how far the scenario went: the rows run it in order, and a
	// row run alone (-rows) first runs the phases before its own, untimed.
	phase int
}

// Phases of the scenario, in order.
const (
	phaseNone = iota
	phaseStarted
	phaseCreated
	phaseIdle
	phaseEdited
	phaseDeletedOne
	phaseDeletedAll
)

func k8sRows(_ context.Context, env *Env) ([]Row, func(), error) {
	nodes, configs := *k8sNodes, *k8sConfigs
	if nodes < 1 || configs < 2 {
		return nil, nil, fmt.Errorf("-k8s-nodes %d -k8s-configs %d: want at least 1 node and 2 configs", nodes, configs)
	}
	// The managers' and client-go's logs would be 100 agents' worth: the
	// rows report what matters.
	ctrl.SetLogger(logr.Discard())
	klog.SetLogger(logr.Discard())

	s := &k8sScale{sockets: env.Dir, agentReqs: newRequestCounter(), operatorReqs: newRequestCounter()}
	e, err := k8stest.Start()
	if err != nil {
		return nil, nil, err
	}
	s.env = e
	for i := range configs {
		s.configs = append(s.configs, fmt.Sprintf("bench-%03d", i))
	}
	size := fmt.Sprintf("%d nodes × %d configs", nodes, configs)
	phaseNames := []string{"", "start", "create", "idle", "edit", "delete-one", "delete-rest"}
	phase := func(p int, run func(context.Context) ([]Figure, error)) func(context.Context) ([]Figure, error) {
		return func(ctx context.Context) ([]Figure, error) {
			if err := s.reach(ctx, p-1); err != nil {
				return nil, err
			}
			stop := profilePhase(phaseNames[p], s.env.Config)
			figs, err := run(ctx)
			stop()
			if p == phaseCreated {
				writeHeapProfile()
			}
			if err == nil {
				s.phase = p
			}
			return figs, err
		}
	}
	rows := []Row{
		{Name: "k8s " + size + ": start agents", Ours: Side{Name: "agents + operator"}, Figures: phase(phaseStarted, s.start)},
		{Name: "k8s " + size + ": create configs", Ours: Side{Name: "until all Ready"}, Figures: phase(phaseCreated, s.create)},
		{Name: "k8s " + size + ": idle", Ours: Side{Name: "nothing changes"}, Figures: phase(phaseIdle, s.idle)},
		{Name: "k8s " + size + ": edit a config", Ours: Side{Name: "until Ready again"}, Figures: phase(phaseEdited, s.edit)},
		{Name: "k8s " + size + ": delete a config", Ours: Side{Name: "until gone"}, Figures: phase(phaseDeletedOne, s.deleteOne)},
		{Name: "k8s " + size + ": delete the rest", Ours: Side{Name: "until gone"}, Figures: phase(phaseDeletedAll, s.deleteRest)},
	}
	return rows, s.stop, nil
}

// reach runs the phases up to p that have not run yet, for a row run alone.
func (s *k8sScale) reach(ctx context.Context, p int) error {
	steps := []func(context.Context) ([]Figure, error){s.start, s.create, s.idle, s.edit, s.deleteOne, s.deleteRest}
	for s.phase < p {
		if _, err := steps[s.phase](ctx); err != nil {
			return fmt.Errorf("earlier phase %d: %w", s.phase+1, err)
		}
		s.phase++
	}
	return nil
}

// stop stops the managers, the in-memory bpfds and the control plane.
func (s *k8sScale) stop() {
	if s.cancel != nil {
		s.cancel()
		s.running.Wait()
		close(s.mgrErrs)
		for err := range s.mgrErrs {
			fmt.Fprintln(os.Stderr, "bench: k8s:", err)
		}
	}
	for _, dc := range s.clients {
		dc.Close()
	}
	for _, d := range s.daemons {
		d.Stop()
	}
	if err := s.env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: k8s: stop control plane:", err)
	}
}

// clientConfig returns the administrator's REST config counting requests
// into c, with a connection pool of its own, as a process of its own has
// (client-go otherwise shares one among clients of equal TLS settings).
func (s *k8sScale) clientConfig(c *requestCounter) *rest.Config {
	cfg := rest.CopyConfig(s.env.Config)
	cfg.Wrap(c.wrap)
	cfg.Proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
	return cfg
}

// managerOptions are controllercmd.Setup's, as the binaries get them with
// their default flags: no metrics or health endpoints. Controller names need
// not be unique, since every agent's is "bpfd-agent".
func (s *k8sScale) managerOptions() ctrl.Options {
	return ctrl.Options{
		Scheme:                 s.env.Scheme,
		Logger:                 logr.Discard(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             ctrlconfig.Controller{SkipNameValidation: ptr.To(true)},
	}
}

// start creates the nodes, one in-memory bpfd each, and starts one agent per
// node (agent.NewManager, as bpfd-agent) and the operator's config
// controller, and waits until every manager's cache is in sync.
func (s *k8sScale) start(ctx context.Context) ([]Figure, error) {
	for i := range *k8sNodes {
		name := fmt.Sprintf("bench-node-%03d", i)
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{benchLabel: "scale", "kubernetes.io/hostname": name}}}
		if err := s.retry(ctx, func() error { return ignore(s.env.Client.Create(ctx, node), apierrors.IsAlreadyExists) }); err != nil {
			return nil, fmt.Errorf("create node %s: %w", name, err)
		}
		s.nodes = append(s.nodes, name)
		d, err := k8stest.ServeDaemon(filepath.Join(s.sockets, fmt.Sprintf("k8s-%03d.sock", i)))
		if err != nil {
			return nil, err
		}
		s.daemons = append(s.daemons, d)
	}

	mgrCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.mgrErrs = make(chan error, len(s.nodes)+1)
	var mgrs []ctrl.Manager
	before := s.countsWithServer(ctx)
	began := time.Now()
	for i, node := range s.nodes {
		dc, err := agent.DialDaemon(s.daemons[i].Socket)
		if err != nil {
			return nil, err
		}
		s.clients = append(s.clients, dc)
		mgr, err := agent.NewManager(s.clientConfig(s.agentReqs), s.managerOptions(), dc, node, agent.Options{})
		if err != nil {
			return nil, fmt.Errorf("agent of %s: %w", node, err)
		}
		mgrs = append(mgrs, mgr)
	}
	// The operator as bpfd-operator sets it up, less the DaemonSet
	// controller, which has nothing to do here. Out of a kubeconfig it
	// gets controller-runtime's client settings: no client-side limit.
	opCfg := s.clientConfig(s.operatorReqs)
	opCfg.QPS = -1
	opOpts := s.managerOptions()
	opOpts.Cache = operator.CacheOptions("bpfd")
	op, err := ctrl.NewManager(opCfg, opOpts)
	if err != nil {
		return nil, fmt.Errorf("operator: %w", err)
	}
	if err := operator.NewConfigReconciler(op.GetClient(), op.GetAPIReader(), operator.ConfigReconcilerOptions{}).SetupWithManager(mgrCtx, op); err != nil {
		return nil, fmt.Errorf("operator: %w", err)
	}
	mgrs = append(mgrs, op)
	for _, mgr := range mgrs {
		s.running.Add(1)
		go func() {
			defer s.running.Done()
			if err := mgr.Start(mgrCtx); err != nil && !errors.Is(err, context.Canceled) {
				s.mgrErrs <- err
			}
		}()
	}
	waitCtx, cancelWait := context.WithTimeout(ctx, *k8sTimeout)
	defer cancelWait()
	for _, mgr := range mgrs {
		if !mgr.GetCache().WaitForCacheSync(waitCtx) {
			return nil, fmt.Errorf("caches not in sync after %s", *k8sTimeout)
		}
	}
	took := time.Since(began)
	return s.figures(ctx, "caches in sync", took, before, nil)
}

// create creates every config, selecting every node, and waits until each
// is Ready on every node, each node's bpfd holding one program of each.
func (s *k8sScale) create(ctx context.Context) ([]Figure, error) {
	before := s.countsWithServer(ctx)
	began := time.Now()
	for i, name := range s.configs {
		if err := s.retry(ctx, func() error {
			return ignore(s.env.Client.Create(ctx, benchConfig(name, i, "v1")), apierrors.IsAlreadyExists)
		}); err != nil {
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
	}
	took, err := s.untilSince(ctx, began, func(ctx context.Context) error {
		for _, name := range s.configs {
			if err := s.readyEverywhere(ctx, name, imageOf(name, "v1")); err != nil {
				return err
			}
		}
		return s.bpfProgramsAre(ctx, len(s.nodes)*len(s.configs))
	})
	if err != nil {
		return nil, err
	}
	return s.figures(ctx, "until all Ready", took, before, []Figure{
		{Name: "BpfPrograms", Value: float64(len(s.nodes) * len(s.configs))},
	})
}

// idle counts the requests the agents and the operator send while nothing
// changes, after every config is Ready: none is the goal. It first waits a
// node report period, in which each agent's NodeReporter writes the
// inventory the creation changed (a consequence of the create phase, not
// idleness), then counts for -k8s-idle. Not counted: the bench's own
// polling (an uncounted client) and leases (neither the agents nor the
// operator here take part in leader election). Watches client-go
// re-establishes on its own timer (every 5 to 10 minutes per watch) are
// counted.
func (s *k8sScale) idle(ctx context.Context) ([]Figure, error) {
	if *k8sIdle <= 0 {
		return nil, nil
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(agent.DefaultNodeReportPeriod):
	}
	if err := s.settle(ctx); err != nil {
		return nil, err
	}
	before := s.countsWithServer(ctx)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(*k8sIdle):
	}
	return s.figuresNow(ctx, "counted", *k8sIdle, before, nil), nil
}

// edit changes the image of the first config and waits until every node
// runs the new one and the config is Ready at its new generation.
func (s *k8sScale) edit(ctx context.Context) ([]Figure, error) {
	name := s.configs[0]
	before := s.countsWithServer(ctx)
	began := time.Now()
	if err := s.retry(ctx, func() error {
		cfg := &v1alpha1.BpfProgramConfig{}
		if err := s.env.Client.Get(ctx, client.ObjectKey{Name: name}, cfg); err != nil {
			return err
		}
		cfg.Spec.Bytecode.Image = imageOf(name, "v2")
		return s.env.Client.Update(ctx, cfg)
	}); err != nil {
		return nil, fmt.Errorf("edit %s: %w", name, err)
	}
	took, err := s.untilSince(ctx, began, func(ctx context.Context) error {
		return s.readyEverywhere(ctx, name, imageOf(name, "v2"))
	})
	if err != nil {
		return nil, err
	}
	return s.figures(ctx, "until Ready again", took, before, nil)
}

// deleteOne deletes the first config and waits until it, its BpfPrograms
// and its programs in every bpfd are gone.
func (s *k8sScale) deleteOne(ctx context.Context) ([]Figure, error) {
	before := s.countsWithServer(ctx)
	began := time.Now()
	name := s.configs[0]
	if err := s.retry(ctx, func() error {
		return ignore(s.env.Client.Delete(ctx, &v1alpha1.BpfProgramConfig{ObjectMeta: metav1.ObjectMeta{Name: name}}), apierrors.IsNotFound)
	}); err != nil {
		return nil, fmt.Errorf("delete %s: %w", name, err)
	}
	took, err := s.untilSince(ctx, began, func(ctx context.Context) error {
		return s.gone(ctx, name)
	})
	if err != nil {
		return nil, err
	}
	return s.figures(ctx, "until gone", took, before, nil)
}

// deleteRest deletes the other configs and waits until nothing is left.
func (s *k8sScale) deleteRest(ctx context.Context) ([]Figure, error) {
	before := s.countsWithServer(ctx)
	began := time.Now()
	rest := s.configs[1:]
	for _, name := range rest {
		if err := s.retry(ctx, func() error {
			return ignore(s.env.Client.Delete(ctx, &v1alpha1.BpfProgramConfig{ObjectMeta: metav1.ObjectMeta{Name: name}}), apierrors.IsNotFound)
		}); err != nil {
			return nil, fmt.Errorf("delete %s: %w", name, err)
		}
	}
	took, err := s.untilSince(ctx, began, func(ctx context.Context) error {
		for _, name := range rest {
			if err := s.gone(ctx, name); err != nil {
				return err
			}
		}
		return s.bpfProgramsAre(ctx, 0)
	})
	if err != nil {
		return nil, err
	}
	return s.figures(ctx, "until gone", took, before, nil)
}

// benchConfig is the i-th config: XDP on one interface or a tracepoint, in
// turn, selecting every bench node.
func benchConfig(name string, i int, version string) *v1alpha1.BpfProgramConfig {
	p := v1alpha1.Program{Name: "tracepoint_counter", Type: v1alpha1.ProgramTypeTracepoint,
		Tracepoint: &v1alpha1.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}}
	if i%2 == 0 {
		p = v1alpha1.Program{Name: "xdp_counter", Type: v1alpha1.ProgramTypeXDP, XDP: &v1alpha1.XDPAttach{
			InterfaceSelector: v1alpha1.InterfaceSelector{Interfaces: []string{"eth0"}},
			Priority:          int32(1 + i%1000),
		}}
	}
	return &v1alpha1.BpfProgramConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.BpfProgramConfigSpec{
			Bytecode:     v1alpha1.BytecodeImage{Image: imageOf(name, version)},
			Programs:     []v1alpha1.Program{p},
			NodeSelector: v1alpha1.LabelSelector{MatchLabels: map[string]string{benchLabel: "scale"}},
		},
	}
}

// imageOf is the reference, by a digest made up from name and version, of
// config name's image.
func imageOf(name, version string) string {
	return fmt.Sprintf("registry.example.com/bench/%s@sha256:%x", name, sha256.Sum256([]byte(name+"@"+version)))
}

// readyEverywhere returns nil when config name is Ready at its generation on
// every node and every node's bpfd holds exactly one program of it, from
// image.
func (s *k8sScale) readyEverywhere(ctx context.Context, name, image string) error {
	cfg := &v1alpha1.BpfProgramConfig{}
	if err := s.env.Client.Get(ctx, client.ObjectKey{Name: name}, cfg); err != nil {
		return err
	}
	ready := meta.FindStatusCondition(cfg.Status.Conditions, v1alpha1.ConditionReady)
	switch {
	case cfg.Status.ObservedGeneration != cfg.Generation:
		return fmt.Errorf("config %s: status of generation %d, want %d", name, cfg.Status.ObservedGeneration, cfg.Generation)
	case ready == nil || ready.Status != metav1.ConditionTrue || int(cfg.Status.NodesLoaded) != len(s.nodes):
		return fmt.Errorf("config %s: %d of %d nodes loaded (Ready %v)", name, cfg.Status.NodesLoaded, len(s.nodes), ready)
	}
	for i, d := range s.daemons {
		var refs []string
		for _, p := range d.Programs() {
			if p.GetMetadata()[agent.MetadataConfig] == name {
				refs = append(refs, p.GetProvenance().GetReference())
			}
		}
		if len(refs) != 1 || refs[0] != image {
			return fmt.Errorf("config %s: node %s's bpfd holds programs of %v, want one of %s", name, s.nodes[i], refs, image)
		}
	}
	return nil
}

// gone returns nil when config name, its BpfPrograms and its programs in
// every bpfd are gone.
func (s *k8sScale) gone(ctx context.Context, name string) error {
	err := s.env.Client.Get(ctx, client.ObjectKey{Name: name}, &v1alpha1.BpfProgramConfig{})
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("config %s still exists (get: %v)", name, err)
	}
	var bps v1alpha1.BpfProgramList
	if err := s.env.Client.List(ctx, &bps, client.MatchingFields{"spec.configName": name}); err != nil {
		return err
	}
	if len(bps.Items) > 0 {
		return fmt.Errorf("config %s: %d BpfPrograms remain", name, len(bps.Items))
	}
	for i, d := range s.daemons {
		for _, p := range d.Programs() {
			if p.GetMetadata()[agent.MetadataConfig] == name {
				return fmt.Errorf("config %s: node %s's bpfd still holds program %d", name, s.nodes[i], p.GetId())
			}
		}
	}
	return nil
}

func (s *k8sScale) bpfProgramsAre(ctx context.Context, n int) error {
	var bps v1alpha1.BpfProgramList
	if err := s.env.Client.List(ctx, &bps); err != nil {
		return err
	}
	if len(bps.Items) != n {
		return fmt.Errorf("%d BpfPrograms, want %d", len(bps.Items), n)
	}
	return nil
}

// retry calls do until it succeeds, once a second, for at most
// -k8s-timeout: the bench's own writes ride out an API server that is too
// busy to answer (timeouts, dropped connections), as kubectl's user would.
func (s *k8sScale) retry(ctx context.Context, do func() error) error {
	deadline := time.Now().Add(*k8sTimeout)
	for {
		err := do()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// ignore returns nil for an error it accepts, err otherwise.
func ignore(err error, is func(error) bool) error {
	if err != nil && is(err) {
		return nil
	}
	return err
}

// untilSince polls done until it returns nil and returns the time since
// began; it gives up after -k8s-timeout with done's last error.
func (s *k8sScale) untilSince(ctx context.Context, began time.Time, done func(context.Context) error) (time.Duration, error) {
	deadline := began.Add(*k8sTimeout)
	for {
		err := done(ctx)
		if err == nil {
			return time.Since(began), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("not converged after %s: %w", *k8sTimeout, err)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// phaseCounts are the counters a phase's figures are the differences of.
type phaseCounts struct {
	agentReqs, operatorReqs       map[string]int
	agentFails, operatorFails     map[string]int
	agentReconciles, opReconciles int
	loads, unloads, lists         int
	apiserver                     map[string]float64
	cpu                           map[string]float64 // seconds, by process
}

func (s *k8sScale) counts() phaseCounts {
	var c phaseCounts
	c.agentReqs, c.agentFails = s.agentReqs.snapshot()
	c.operatorReqs, c.operatorFails = s.operatorReqs.snapshot()
	c.agentReconciles, c.opReconciles = reconciles(agentController), reconciles(operatorController)
	for _, d := range s.daemons {
		c.loads += d.Calls("Load")
		c.unloads += d.Calls("Unload")
		c.lists += d.Calls("List")
	}
	return c
}

// countsWithServer adds the API server's own counts to counts.
func (s *k8sScale) countsWithServer(ctx context.Context) phaseCounts {
	c := s.counts()
	m, err := apiserverRequests(ctx, s.env.Config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: k8s:", err)
	}
	c.apiserver = m
	c.cpu = childCPU("kube-apiserver", "etcd")
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		c.cpu["bench process"] = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	return c
}

// figures waits until no client has sent a request for a while (the
// stragglers' status updates and re-reconciles belong to the phase), then
// returns the phase's figures: the time it took, and the requests and
// reconciles since before, with requests per reconcile by verb.
func (s *k8sScale) figures(ctx context.Context, what string, took time.Duration, before phaseCounts, extra []Figure) ([]Figure, error) {
	if err := s.settle(ctx); err != nil {
		return nil, err
	}
	return s.figuresNow(ctx, what, took, before, extra), nil
}

// figuresNow returns the figures of the phase from before until now.
func (s *k8sScale) figuresNow(ctx context.Context, what string, took time.Duration, before phaseCounts, extra []Figure) []Figure {
	after := s.countsWithServer(ctx)
	figs := []Figure{{Name: what, Value: took.Seconds(), Unit: "s"}, {Name: "bench process peak RSS", Value: selfPeakRSS(), Unit: "MiB"}}
	figs = append(figs, extra...)
	agentRec := after.agentReconciles - before.agentReconciles
	opRec := after.opReconciles - before.opReconciles
	figs = append(figs,
		Figure{Name: "bpfd Load calls", Value: float64(after.loads - before.loads)},
		Figure{Name: "bpfd Unload calls", Value: float64(after.unloads - before.unloads)},
		Figure{Name: "bpfd List calls", Value: float64(after.lists - before.lists)},
	)
	figs = append(figs, requestFigures("agents", before.agentReqs, after.agentReqs, agentRec, len(s.nodes))...)
	figs = append(figs, failureFigures("agents", before.agentFails, after.agentFails)...)
	figs = append(figs, requestFigures("operator", before.operatorReqs, after.operatorReqs, opRec, 1)...)
	figs = append(figs, failureFigures("operator", before.operatorFails, after.operatorFails)...)
	for _, p := range []string{"bench process", "kube-apiserver", "etcd"} {
		if _, ok := before.cpu[p]; ok {
			figs = append(figs, Figure{Name: p + " CPU", Value: after.cpu[p] - before.cpu[p], Unit: "s"})
		}
	}
	figs = append(figs, apiserverFigures(before.apiserver, after.apiserver)...)
	return figs
}

// failureFigures reports who's failed requests between two snapshots, by
// verb and status code, e.g. "update status 409" for conflicts.
func failureFigures(who string, before, after map[string]int) []Figure {
	var figs []Figure
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if d := after[k] - before[k]; d > 0 {
			figs = append(figs, Figure{Name: who + " " + k, Value: float64(d), Unit: "failed"})
		}
	}
	return figs
}

// requestFigures reports who's reconciles and requests between two
// snapshots: totals, then per verb per reconcile (per client when there
// were no reconciles, as at start).
func requestFigures(who string, before, after map[string]int, reconciles, clients int) []Figure {
	total := 0
	diff := map[string]int{}
	for v, n := range after {
		if d := n - before[v]; d > 0 {
			diff[v] = d
			total += d
		}
	}
	figs := []Figure{
		{Name: who + " reconciles", Value: float64(reconciles)},
		{Name: who + " requests", Value: float64(total)},
	}
	per, unit := float64(reconciles), "per reconcile"
	if reconciles == 0 {
		per, unit = float64(clients), "per client"
	}
	for _, v := range slices.Sorted(maps.Keys(diff)) {
		figs = append(figs, Figure{Name: who + " " + v, Value: float64(diff[v]) / per, Unit: unit})
	}
	return figs
}

// settle waits until no client sent a request for quiet, at most
// settleLimit.
func (s *k8sScale) settle(ctx context.Context) error {
	deadline := time.Now().Add(settleLimit)
	last := s.counts()
	lastChange := time.Now()
	for time.Since(lastChange) < quiet {
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "bench: k8s: requests still coming after %s; counting up to now\n", settleLimit)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
		now := s.counts()
		if !maps.Equal(now.agentReqs, last.agentReqs) || !maps.Equal(now.operatorReqs, last.operatorReqs) {
			last, lastChange = now, time.Now()
		}
	}
	return nil
}

// reconciles returns how many reconciles controller-runtime counted of the
// controllers named name, whatever their result.
func reconciles(name string) int {
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		return 0
	}
	n := 0.0
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == name {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return int(n)
}
