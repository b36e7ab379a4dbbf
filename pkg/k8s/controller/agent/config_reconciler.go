package agent

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// configReconciler is what the Reconciler (BpfProgramConfigs, reported in
// BpfPrograms) and the TenantReconciler (BpfTenantProgramConfigs, reported
// in BpfTenantPrograms) share: the reconcile of one config on this node
// around its load, and the node's report on the config. The config is
// unloaded before its reports are deleted, nothing is loaded before the
// node's finalizer is on the config, a report's status is written only when
// it changes and over the version this agent last wrote (lastWrites), and
// failures are classified and reported alike. What a config loads is the
// load function each reconcile is given.
type configReconciler struct {
	client   client.Client
	daemon   Daemon
	nodeName string
	opts     ReconcilerOptions
	kind     configKind

	mu sync.Mutex
	// waiting is when each config was first found waiting for the node's
	// finalizer.
	waiting map[types.NamespacedName]waiting
	// written is what this agent last wrote to its reports' statuses.
	written lastWrites
}

// configKind is one kind of config and the kind of the node's reports on it.
type configKind struct {
	// config and report are the kinds' names, for messages and owner
	// references.
	config, report string
	// namespaced is true of namespaced configs, whose programs bpfd finds
	// by MetadataNamespace too.
	namespaced bool
	// managedBy is the MetadataManagedBy of the programs loaded for
	// configs of the kind.
	managedBy string
	// newReport returns an empty report, newList an empty list of them.
	newReport func() reportObject
	newList   func() client.ObjectList
}

// configObject is a config of either kind.
type configObject interface {
	client.Object
	SelectsNode(nodeLabels map[string]string) (bool, error)
}

// reportObject is a node's report on a config of either kind.
type reportObject interface {
	client.Object
	Reports(config string, configUID types.UID, node string) bool
	ReportSpec() *v1alpha1.BpfProgramSpec
	ReportStatus() *v1alpha1.BpfProgramStatus
}

var (
	_ configObject = (*v1alpha1.BpfProgramConfig)(nil)
	_ configObject = (*v1alpha1.BpfTenantProgramConfig)(nil)
	_ reportObject = (*v1alpha1.BpfProgram)(nil)
	_ reportObject = (*v1alpha1.BpfTenantProgram)(nil)
)

// waiting is when a config, by uid, was first found waiting.
type waiting struct {
	uid   types.UID
	since time.Time
}

// ReconcilerOptions are the Reconciler's and TenantReconciler's optional
// settings.
type ReconcilerOptions struct {
	// PrimaryInterface names the node's primary interface, for programs that
	// ask for it. Nil reads the default route from /proc/net.
	PrimaryInterface func() (string, error)
	// ResyncPeriod is how often a config is checked against bpfd's List
	// while nothing else happens, which catches a bpfd that lost its state,
	// and how soon a load refused for good (PolicyDenied, VerifierRejected,
	// InvalidRequest) is tried again. Zero means 5 minutes.
	ResyncPeriod time.Duration
	// RetryPeriod is how soon a config waiting for its map owner or for
	// pods to start is tried again, and how long a config waits for the
	// node's finalizer before the node's report on it says Pending. Zero
	// means 5 seconds.
	RetryPeriod time.Duration
	// CallTimeout bounds each call to bpfd; Load may pull an image. Zero
	// means 5 minutes.
	CallTimeout time.Duration
}

func newConfigReconciler(c client.Client, d Daemon, nodeName string, opts ReconcilerOptions, kind configKind) *configReconciler {
	if opts.PrimaryInterface == nil {
		opts.PrimaryInterface = func() (string, error) { return PrimaryInterface("/proc/net") }
	}
	if opts.ResyncPeriod == 0 {
		opts.ResyncPeriod = 5 * time.Minute
	}
	if opts.RetryPeriod == 0 {
		opts.RetryPeriod = 5 * time.Second
	}
	if opts.CallTimeout == 0 {
		opts.CallTimeout = 5 * time.Minute
	}
	return &configReconciler{client: c, daemon: d, nodeName: nodeName, opts: opts, kind: kind, waiting: map[types.NamespacedName]waiting{}}
}

// loadFunc makes bpfd run what the config asks for on this node and writes
// rep, the node's report on it, with configReconciler's report or failed.
type loadFunc func(ctx context.Context, rep reportObject) (reconcile.Result, error)

// reconcile converges the config named in req, read into cfg, on this node:
// loaded by load when the config exists, is not being deleted, selects the
// node and carries the node's finalizer; unloaded, with the node's reports
// on it deleted, when it is gone, being deleted or not selecting the node.
func (r *configReconciler) reconcile(ctx context.Context, req reconcile.Request, cfg configObject, load loadFunc) (reconcile.Result, error) {
	key := req.NamespacedName
	found := true
	if err := r.client.Get(ctx, key, cfg); apierrors.IsNotFound(err) {
		found = false
	} else if err != nil {
		return reconcile.Result{}, fmt.Errorf("%s %s: %w", r.kind.config, keyName(key), err)
	}
	node := &corev1.Node{}
	if err := r.client.Get(ctx, types.NamespacedName{Name: r.nodeName}, node); err != nil {
		// Without its Node the agent cannot tell what is selected; it
		// leaves the node's programs alone rather than guess.
		return reconcile.Result{}, fmt.Errorf("node %s: %w", r.nodeName, err)
	}
	if node.Name != r.nodeName {
		return reconcile.Result{}, fmt.Errorf("node %s: the cache returned node %s", r.nodeName, node.Name)
	}
	reps, err := r.reports(ctx, key)
	if err != nil {
		return reconcile.Result{}, err
	}

	want := found && cfg.GetDeletionTimestamp().IsZero()
	if want {
		selected, err := cfg.SelectsNode(node.Labels)
		if err != nil {
			return reconcile.Result{}, reconcile.TerminalError(err)
		}
		want = selected
	}
	if !want {
		r.waited(key)
		if !found {
			cfg = nil
		}
		return reconcile.Result{}, r.unload(ctx, key, cfg, reps)
	}
	if fin := v1alpha1.NodeFinalizer(r.nodeName); !controllerutil.ContainsFinalizer(cfg, fin) {
		// The operator's finalizer keeps cfg until this node unloaded it;
		// the config's update when it arrives triggers the next reconcile.
		return r.awaitFinalizer(ctx, cfg, reps, fin)
	}
	r.waited(key)
	// The report exists before anything loads, so that the operator knows
	// this node may hold programs of cfg.
	rep, err := r.ensureReport(ctx, cfg, reps)
	if err != nil {
		return reconcile.Result{}, err
	}
	return load(ctx, rep)
}

// awaitFinalizer answers a config that selects the node but does not carry
// the node's finalizer fin yet. bpfd-operator adds the finalizers of every
// selected node as soon as it sees a config, so for RetryPeriod from when
// this agent first found cfg waiting nothing is written: a new config's
// report is then created with the programs loaded, one create and one
// status write. After that, or when the node's report already has a status,
// the report says Pending and why.
func (r *configReconciler) awaitFinalizer(ctx context.Context, cfg configObject, reps []reportObject, fin string) (reconcile.Result, error) {
	reported := slices.ContainsFunc(reps, func(rep reportObject) bool {
		return rep.Reports(cfg.GetName(), cfg.GetUID(), r.nodeName) && findCondition(rep.ReportStatus().Conditions, v1alpha1.ConditionReady) != nil
	})
	if !reported {
		if wait := r.finalizerDue(cfg); wait > 0 {
			return reconcile.Result{RequeueAfter: wait}, nil
		}
	}
	rep, err := r.ensureReport(ctx, cfg, reps)
	if err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{}, r.report(ctx, rep, cfg, notLoaded(v1alpha1.ReasonPending,
		"waiting for bpfd-operator to add finalizer %s to the config", fin), nil)
}

// finalizerDue returns how long cfg may still wait for the node's finalizer
// before its report says Pending: RetryPeriod from when this agent first
// found it waiting.
func (r *configReconciler) finalizerDue(cfg configObject) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := client.ObjectKeyFromObject(cfg)
	w, ok := r.waiting[key]
	if !ok || w.uid != cfg.GetUID() {
		w = waiting{uid: cfg.GetUID(), since: time.Now()}
		r.waiting[key] = w
	}
	return time.Until(w.since.Add(r.opts.RetryPeriod))
}

// waited forgets that config key waited for the node's finalizer.
func (r *configReconciler) waited(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.waiting, key)
}

// failed reports a failed call to bpfd and says when to try again. pod
// names the pod a program is attached in (see nodeReport.status).
func (r *configReconciler) failed(ctx context.Context, rep reportObject, cfg configObject, what string, err error, pod func(*bpfdv1.Program) string) (reconcile.Result, error) {
	reason := reasonOf(err)
	if werr := r.report(ctx, rep, cfg, notLoaded(reason, "%s: %s", what, messageOf(err)), pod); werr != nil {
		return reconcile.Result{}, werr
	}
	if retryable(reason) {
		return reconcile.Result{}, fmt.Errorf("%s %s: %w", what, keyName(client.ObjectKeyFromObject(cfg)), err)
	}
	log.FromContext(ctx).Info("bpfd refused the config", "reason", reason, "message", messageOf(err))
	return reconcile.Result{RequeueAfter: r.opts.ResyncPeriod}, nil
}

// unload removes whatever bpfd holds for the config key and, once that is
// done, the node's reports on it (reps). cfg is the config, nil when it is
// gone.
func (r *configReconciler) unload(ctx context.Context, key types.NamespacedName, cfg configObject, reps []reportObject) error {
	have, err := r.list(ctx, r.programsOf(key))
	if err == nil && len(have) > 0 {
		err = r.unloadPrograms(ctx, have)
		if err == nil {
			log.FromContext(ctx).Info("unloaded", "programs", len(have))
		}
	}
	if err != nil {
		if cfg != nil {
			for _, rep := range reps {
				if rep.Reports(cfg.GetName(), cfg.GetUID(), r.nodeName) {
					if werr := r.report(ctx, rep, cfg, notLoaded(v1alpha1.ReasonUnloading, "unload: %s", messageOf(err)), nil); werr != nil {
						return werr
					}
				}
			}
		}
		return fmt.Errorf("unload %s: %w", keyName(key), err)
	}
	for _, rep := range reps {
		if err := r.delete(ctx, rep); err != nil {
			return err
		}
	}
	return nil
}

// programsOf returns the metadata bpfd's List finds the programs of the
// config key by.
func (r *configReconciler) programsOf(key types.NamespacedName) map[string]string {
	if r.kind.namespaced {
		return map[string]string{MetadataNamespace: key.Namespace, MetadataConfig: key.Name}
	}
	return map[string]string{MetadataConfig: key.Name}
}

// keyName is the name of a config or report in messages: namespace/name,
// or name for a cluster-scoped one.
func keyName(key types.NamespacedName) string {
	if key.Namespace == "" {
		return key.Name
	}
	return key.String()
}
