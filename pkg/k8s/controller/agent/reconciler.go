package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// Reconciler converges one node's bpfd towards the BpfProgramConfigs that
// select the node, one config per reconcile, and reports in the node's
// BpfPrograms.
type Reconciler struct {
	client   client.Client
	daemon   Daemon
	nodeName string
	opts     ReconcilerOptions

	mu sync.Mutex
	// waiting is when each config, by name, was first found waiting for
	// the node's finalizer.
	waiting map[string]waiting
	// written is what this agent last wrote to its reports' statuses.
	written lastWrites
}

// waiting is when a config, by uid, was first found waiting.
type waiting struct {
	uid   types.UID
	since time.Time
}

// ReconcilerOptions are the Reconciler's optional settings.
type ReconcilerOptions struct {
	// PrimaryInterface names the node's primary interface, for programs that
	// ask for it. Nil reads the default route from /proc/net.
	PrimaryInterface func() (string, error)
	// ResyncPeriod is how often a config is checked against bpfd's List
	// while nothing else happens, which catches a bpfd that lost its state,
	// and how soon a load refused for good (PolicyDenied, VerifierRejected,
	// InvalidRequest) is tried again. Zero means 5 minutes.
	ResyncPeriod time.Duration
	// RetryPeriod is how soon a config waiting for its map owner is tried
	// again, and how long a config waits for the node's finalizer before
	// the node's report on it says Pending. Zero means 5 seconds.
	RetryPeriod time.Duration
	// CallTimeout bounds each call to bpfd; Load may pull an image. Zero
	// means 5 minutes.
	CallTimeout time.Duration
}

// NewReconciler returns the reconciler of node nodeName. c reads configs,
// nodes and BpfPrograms (a cache, see CacheOptions) and writes BpfPrograms;
// d is the node's bpfd.
func NewReconciler(c client.Client, d Daemon, nodeName string, opts ReconcilerOptions) *Reconciler {
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
	return &Reconciler{client: c, daemon: d, nodeName: nodeName, opts: opts, waiting: map[string]waiting{}}
}

// Reconcile converges the programs of the config named in req on this node:
// loaded when the config exists, is not being deleted and selects the node;
// unloaded, with the node's BpfProgram deleted, otherwise.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	cfg := &v1alpha1.BpfProgramConfig{}
	if err := r.client.Get(ctx, req.NamespacedName, cfg); apierrors.IsNotFound(err) {
		cfg = nil
	} else if err != nil {
		return reconcile.Result{}, fmt.Errorf("BpfProgramConfig %s: %w", req.Name, err)
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
	bps, err := r.bpfPrograms(ctx, req.Name)
	if err != nil {
		return reconcile.Result{}, err
	}

	want := cfg != nil && cfg.DeletionTimestamp.IsZero()
	if want {
		selected, err := cfg.SelectsNode(node.Labels)
		if err != nil {
			return reconcile.Result{}, reconcile.TerminalError(err)
		}
		want = selected
	}
	if !want {
		r.waited(req.Name)
		return reconcile.Result{}, r.unload(ctx, req.Name, cfg, bps)
	}
	return r.load(ctx, cfg, bps)
}

// bpfPrograms returns this node's BpfPrograms whose spec names the config
// called name: under the name BpfProgramName gives them or another (one an
// older agent made, or one made by someone else). What the cache holds is
// checked again, not trusted to be this node's.
func (r *Reconciler) bpfPrograms(ctx context.Context, name string) ([]*v1alpha1.BpfProgram, error) {
	var list v1alpha1.BpfProgramList
	if err := r.client.List(ctx, &list, client.MatchingFields{configNameField: name}); err != nil {
		return nil, fmt.Errorf("BpfPrograms of %s: %w", name, err)
	}
	var bps []*v1alpha1.BpfProgram
	for i := range list.Items {
		if bp := &list.Items[i]; bp.Spec.NodeName == r.nodeName && bp.Spec.ConfigName == name {
			bps = append(bps, bp)
		}
	}
	return bps, nil
}

// load makes bpfd run exactly what cfg asks for on this node. bps are this
// node's BpfPrograms of cfg's name.
func (r *Reconciler) load(ctx context.Context, cfg *v1alpha1.BpfProgramConfig, bps []*v1alpha1.BpfProgram) (reconcile.Result, error) {
	if fin := v1alpha1.NodeFinalizer(r.nodeName); !controllerutil.ContainsFinalizer(cfg, fin) {
		// The operator's finalizer keeps cfg until this node unloaded it;
		// the config's update when it arrives triggers the next reconcile.
		return r.awaitFinalizer(ctx, cfg, bps, fin)
	}
	r.waited(cfg.Name)
	// The BpfProgram exists before anything loads, so that the operator
	// knows this node may hold programs of cfg.
	bp, err := r.ensureBpfProgram(ctx, cfg, bps)
	if err != nil {
		return reconcile.Result{}, err
	}

	have, err := r.list(ctx, map[string]string{MetadataConfig: cfg.Name})
	if err != nil {
		return r.failed(ctx, bp, cfg, "list programs", err)
	}
	want, reason, retry, err := r.request(ctx, cfg)
	if err != nil {
		// The node runs what the config says or nothing: programs of an
		// older request go.
		if len(have) > 0 {
			if err := r.unloadPrograms(ctx, have); err != nil {
				return r.failed(ctx, bp, cfg, "unload outdated programs", err)
			}
		}
		return reconcile.Result{RequeueAfter: retry}, r.report(ctx, bp, cfg, notLoaded(reason, "%v", err))
	}
	if current(have, want) {
		// Who may mount the maps changes in place: the programs keep
		// running, their maps their contents.
		if have, err = r.updateReaders(ctx, have, want[0].GetOwner()); err != nil {
			return r.failed(ctx, bp, cfg, "update the owner's map reader namespaces", err)
		}
		return reconcile.Result{RequeueAfter: r.opts.ResyncPeriod}, r.report(ctx, bp, cfg, loaded(have))
	}
	// Anything else loaded for this config name (an older request, an older
	// config of the same name, a partial set) goes, then the requests load
	// whole. bpfd has no update in place yet, so an edit briefly leaves the
	// hooks empty.
	if len(have) > 0 {
		if err := r.unloadPrograms(ctx, have); err != nil {
			return r.failed(ctx, bp, cfg, "unload outdated programs", err)
		}
		log.FromContext(ctx).Info("unloaded outdated programs", "count", len(have))
	}
	programs, err := r.loadAll(ctx, want)
	if err != nil {
		return r.failed(ctx, bp, cfg, "load", err)
	}
	log.FromContext(ctx).Info("loaded", "image", cfg.Spec.Bytecode.Image, "programs", len(programs))
	return reconcile.Result{RequeueAfter: r.opts.ResyncPeriod}, r.report(ctx, bp, cfg, loaded(programs))
}

// awaitFinalizer answers a config that selects the node but does not carry
// the node's finalizer fin yet. bpfd-operator adds the finalizers of every
// selected node as soon as it sees a config, so for RetryPeriod from when
// this agent first found cfg waiting nothing is written: a new config's
// report is then created with the programs loaded, one create and one
// status write. After that, or when the node's report already has a status,
// the report says Pending and why.
func (r *Reconciler) awaitFinalizer(ctx context.Context, cfg *v1alpha1.BpfProgramConfig, bps []*v1alpha1.BpfProgram, fin string) (reconcile.Result, error) {
	reported := slices.ContainsFunc(bps, func(bp *v1alpha1.BpfProgram) bool {
		return bp.Reports(cfg.Name, cfg.UID, r.nodeName) && findCondition(bp.Status.Conditions, v1alpha1.ConditionReady) != nil
	})
	if !reported {
		if wait := r.finalizerDue(cfg); wait > 0 {
			return reconcile.Result{RequeueAfter: wait}, nil
		}
	}
	bp, err := r.ensureBpfProgram(ctx, cfg, bps)
	if err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{}, r.report(ctx, bp, cfg, notLoaded(v1alpha1.ReasonPending,
		"waiting for bpfd-operator to add finalizer %s to the config", fin))
}

// finalizerDue returns how long cfg may still wait for the node's finalizer
// before its report says Pending: RetryPeriod from when this agent first
// found it waiting.
func (r *Reconciler) finalizerDue(cfg *v1alpha1.BpfProgramConfig) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	w, ok := r.waiting[cfg.Name]
	if !ok || w.uid != cfg.UID {
		w = waiting{uid: cfg.UID, since: time.Now()}
		r.waiting[cfg.Name] = w
	}
	return time.Until(w.since.Add(r.opts.RetryPeriod))
}

// waited forgets that config name waited for the node's finalizer.
func (r *Reconciler) waited(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.waiting, name)
}

// loadAll sends the requests LoadRequests made, each further attachment of
// a program with the program's first attachment as its map owner, and
// returns what bpfd loaded. When one fails, it unloads what the others
// loaded (what it cannot unload, the next reconcile finds) and returns the
// failure.
func (r *Reconciler) loadAll(ctx context.Context, reqs []*bpfdv1.LoadRequest) ([]*bpfdv1.Program, error) {
	callCtx, cancel := context.WithTimeout(ctx, r.opts.CallTimeout)
	defer cancel()
	resp, err := r.daemon.Load(callCtx, reqs[0])
	if err != nil {
		return nil, err
	}
	programs := resp.GetPrograms()
	firstIDs := make(map[string]uint64, len(programs))
	for _, p := range programs {
		firstIDs[p.GetName()] = p.GetId()
	}
	for _, req := range reqs[1:] {
		req = proto.CloneOf(req)
		req.MapOwnerId = firstIDs[req.GetPrograms()[0].GetName()]
		resp, err := r.daemon.Load(callCtx, req)
		if err != nil {
			if uerr := r.unloadPrograms(ctx, programs); uerr != nil {
				log.FromContext(ctx).Error(uerr, "unload the programs of a partly failed load")
			}
			return nil, err
		}
		programs = append(programs, resp.GetPrograms()...)
	}
	return programs, nil
}

// request returns the Load requests for cfg on this node or, when there
// are none yet, the reason to report and when to try again.
func (r *Reconciler) request(ctx context.Context, cfg *v1alpha1.BpfProgramConfig) (_ []*bpfdv1.LoadRequest, reason string, retry time.Duration, _ error) {
	mapOwner, err := r.mapOwner(ctx, cfg)
	if err != nil {
		return nil, v1alpha1.ReasonMapOwnerNotReady, r.opts.RetryPeriod, err
	}
	reqs, err := LoadRequests(cfg, r.opts.PrimaryInterface, mapOwner)
	switch {
	case errors.Is(err, ErrNoDefaultRoute):
		return nil, v1alpha1.ReasonAttachFailed, r.opts.RetryPeriod, err // a route may come up
	case err != nil:
		return nil, v1alpha1.ReasonInvalidRequest, r.opts.ResyncPeriod, err
	}
	return reqs, "", 0, nil
}

// updateReaders asks bpfd to give the programs of have whose owner's map
// reader namespaces are not owner's owner's, and returns have as bpfd then
// reports it.
func (r *Reconciler) updateReaders(ctx context.Context, have []*bpfdv1.Program, owner *bpfdv1.Owner) ([]*bpfdv1.Program, error) {
	var ids []uint64
	for _, p := range have {
		if !slices.Equal(p.GetOwner().GetMapReaderNamespaces(), owner.GetMapReaderNamespaces()) {
			ids = append(ids, p.GetId())
		}
	}
	if len(ids) == 0 {
		return have, nil
	}
	callCtx, cancel := context.WithTimeout(ctx, r.opts.CallTimeout)
	defer cancel()
	resp, err := r.daemon.UpdateOwner(callCtx, &bpfdv1.UpdateOwnerRequest{Ids: ids, Owner: owner})
	if err != nil {
		return nil, err
	}
	updated := map[uint64]*bpfdv1.Program{}
	for _, p := range resp.GetPrograms() {
		updated[p.GetId()] = p
	}
	out := make([]*bpfdv1.Program, len(have))
	for i, p := range have {
		out[i] = p
		if u, ok := updated[p.GetId()]; ok {
			out[i] = u
		}
	}
	log.FromContext(ctx).Info("updated the map reader namespaces", "programs", len(ids), "namespaces", owner.GetMapReaderNamespaces())
	return out, nil
}

// current reports whether have is exactly what want loads.
func current(have []*bpfdv1.Program, want []*bpfdv1.LoadRequest) bool {
	n := 0
	for _, req := range want {
		n += len(req.GetPrograms())
	}
	if len(have) != n {
		return false
	}
	for _, p := range have {
		for _, k := range []string{MetadataConfigUID, MetadataRequestHash} {
			if p.GetMetadata()[k] != want[0].GetMetadata()[k] {
				return false
			}
		}
	}
	return true
}

// failed reports a failed call to bpfd and says when to try again.
func (r *Reconciler) failed(ctx context.Context, bp *v1alpha1.BpfProgram, cfg *v1alpha1.BpfProgramConfig, what string, err error) (reconcile.Result, error) {
	reason := reasonOf(err)
	if werr := r.report(ctx, bp, cfg, notLoaded(reason, "%s: %s", what, messageOf(err))); werr != nil {
		return reconcile.Result{}, werr
	}
	if retryable(reason) {
		return reconcile.Result{}, fmt.Errorf("%s %s: %w", what, cfg.Name, err)
	}
	log.FromContext(ctx).Info("bpfd refused the config", "reason", reason, "message", messageOf(err))
	return reconcile.Result{RequeueAfter: r.opts.ResyncPeriod}, nil
}

// unload removes whatever bpfd holds for the config name and, once that is
// done, the node's BpfPrograms of it (bps).
func (r *Reconciler) unload(ctx context.Context, name string, cfg *v1alpha1.BpfProgramConfig, bps []*v1alpha1.BpfProgram) error {
	have, err := r.list(ctx, map[string]string{MetadataConfig: name})
	if err == nil && len(have) > 0 {
		err = r.unloadPrograms(ctx, have)
		if err == nil {
			log.FromContext(ctx).Info("unloaded", "programs", len(have))
		}
	}
	if err != nil {
		if cfg != nil {
			for _, bp := range bps {
				if bp.Reports(cfg.Name, cfg.UID, r.nodeName) {
					if werr := r.report(ctx, bp, cfg, notLoaded(v1alpha1.ReasonUnloading, "unload: %s", messageOf(err))); werr != nil {
						return werr
					}
				}
			}
		}
		return fmt.Errorf("unload %s: %w", name, err)
	}
	for _, bp := range bps {
		if err := r.delete(ctx, bp); err != nil {
			return err
		}
	}
	return nil
}

// delete deletes bp, this very object (by uid), unless it is gone already.
func (r *Reconciler) delete(ctx context.Context, bp *v1alpha1.BpfProgram) error {
	if err := r.client.Delete(ctx, bp, client.Preconditions{UID: &bp.UID}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete BpfProgram %s: %w", bp.Name, err)
	}
	r.written.forget(bp.UID)
	return nil
}

func (r *Reconciler) unloadPrograms(ctx context.Context, programs []*bpfdv1.Program) error {
	ids := make([]uint64, len(programs))
	for i, p := range programs {
		ids[i] = p.GetId()
	}
	callCtx, cancel := context.WithTimeout(ctx, r.opts.CallTimeout)
	defer cancel()
	_, err := r.daemon.Unload(callCtx, &bpfdv1.UnloadRequest{Ids: ids})
	return err
}

// list returns the programs the agent loaded whose metadata has every key
// of selector with its value.
func (r *Reconciler) list(ctx context.Context, selector map[string]string) ([]*bpfdv1.Program, error) {
	sel := map[string]string{MetadataManagedBy: ManagedByAgent}
	for k, v := range selector {
		sel[k] = v
	}
	callCtx, cancel := context.WithTimeout(ctx, r.opts.CallTimeout)
	defer cancel()
	resp, err := r.daemon.List(callCtx, &bpfdv1.ListRequest{Selector: sel})
	if err != nil {
		return nil, err
	}
	return resp.GetPrograms(), nil
}

// mapOwner returns bpfd's id of a program of the config cfg's
// mapOwnerSelector matches, on this node; 0 without a selector.
func (r *Reconciler) mapOwner(ctx context.Context, cfg *v1alpha1.BpfProgramConfig) (uint64, error) {
	if cfg.Spec.MapOwnerSelector == nil {
		return 0, nil
	}
	sel, err := cfg.Spec.MapOwnerSelector.Selector()
	if err != nil {
		return 0, fmt.Errorf("mapOwnerSelector: %w", err)
	}
	var list v1alpha1.BpfProgramConfigList
	if err := r.client.List(ctx, &list, client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return 0, fmt.Errorf("mapOwnerSelector: %w", err)
	}
	owners := slices.DeleteFunc(list.Items, func(c v1alpha1.BpfProgramConfig) bool { return c.UID == cfg.UID })
	if len(owners) != 1 {
		return 0, fmt.Errorf("mapOwnerSelector matches %d configs, want 1: %w", len(owners), ErrMapOwnerNotReady)
	}
	programs, err := r.list(ctx, map[string]string{MetadataConfigUID: string(owners[0].UID)})
	if err != nil {
		return 0, fmt.Errorf("map owner %s: %s: %w", owners[0].Name, messageOf(err), ErrMapOwnerNotReady)
	}
	if len(programs) == 0 {
		return 0, fmt.Errorf("map owner %s is not loaded on this node yet: %w", owners[0].Name, ErrMapOwnerNotReady)
	}
	return slices.MinFunc(programs, func(a, b *bpfdv1.Program) int { return cmp.Compare(a.GetId(), b.GetId()) }).GetId(), nil
}

// ensureBpfProgram returns the node's report on cfg: the BpfProgram named
// BpfProgramName(cfg, node), with their spec and labels, controlled by cfg.
// bps are the node's BpfPrograms whose spec names cfg's name. One of them of
// that name that another config (an older one of the same name, or none)
// controls is replaced, not adopted: its status is not this agent's. Those
// of other names (an older agent's <config>-<node>, or anyone's) are deleted
// once the report exists. An object of that name this node's cache does not
// hold (its spec names another node or config) is never touched or reported
// into: creating the report fails until someone removes it.
func (r *Reconciler) ensureBpfProgram(ctx context.Context, cfg *v1alpha1.BpfProgramConfig, bps []*v1alpha1.BpfProgram) (*v1alpha1.BpfProgram, error) {
	name := v1alpha1.BpfProgramName(cfg.Name, r.nodeName)
	labels := v1alpha1.BpfProgramLabels(cfg.Name, r.nodeName, cfg.UID)
	var bp *v1alpha1.BpfProgram
	var others []*v1alpha1.BpfProgram
	for _, o := range bps {
		switch {
		case o.Reports(cfg.Name, cfg.UID, r.nodeName):
			bp = o
		case o.Name == name:
			// The name and spec are right, the controller is not.
			if err := r.delete(ctx, o); err != nil {
				return nil, err
			}
			log.FromContext(ctx).Info("replacing a BpfProgram this config does not control", "name", o.Name, "controller", metav1.GetControllerOf(o))
		default:
			others = append(others, o)
		}
	}
	if bp == nil {
		bp = &v1alpha1.BpfProgram{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, OwnerReferences: []metav1.OwnerReference{{
				APIVersion: v1alpha1.GroupVersion.String(),
				Kind:       "BpfProgramConfig",
				Name:       cfg.Name,
				UID:        cfg.UID,
				Controller: ptr.To(true),
			}}},
			Spec: v1alpha1.BpfProgramSpec{NodeName: r.nodeName, ConfigName: cfg.Name},
		}
		if err := r.client.Create(ctx, bp); apierrors.IsAlreadyExists(err) {
			// Either the cache has not seen this agent's own create yet,
			// or the object is not this node's: its spec names another
			// node or config. Both retry; the second until it is removed.
			return nil, fmt.Errorf("create BpfProgram %s: %w: an object of that name exists that this node's cache does not hold as its report on %s; nothing is loaded while it is there", name, ErrNameTaken, cfg.Name)
		} else if err != nil {
			return nil, fmt.Errorf("create BpfProgram %s: %w", name, err)
		}
	} else if !maps.Equal(bp.Labels, labels) {
		bp = bp.DeepCopy()
		bp.Labels = labels
		if err := r.client.Update(ctx, bp); err != nil {
			return nil, fmt.Errorf("update BpfProgram %s: %w", bp.Name, err)
		}
	}
	for _, o := range others {
		if err := r.delete(ctx, o); err != nil {
			return nil, err
		}
		log.FromContext(ctx).Info("deleted a BpfProgram of this node and config under another name", "name", o.Name)
	}
	return bp, nil
}

// report writes rep into bp's status, unless the status already says so.
func (r *Reconciler) report(ctx context.Context, bp *v1alpha1.BpfProgram, cfg *v1alpha1.BpfProgramConfig, rep nodeReport) error {
	prev, version := r.written.current(bp, bp.Status)
	st := rep.status(prev, bp.Generation, cfg.Generation, nil)
	if equality.Semantic.DeepEqual(st, prev) {
		return nil
	}
	bp = bp.DeepCopy()
	bp.ResourceVersion, bp.Status = version, st
	if err := r.client.Status().Update(ctx, bp); err != nil {
		return fmt.Errorf("update status of BpfProgram %s: %w", bp.Name, err)
	}
	r.written.wrote(bp, version, st)
	return nil
}

var _ reconcile.Reconciler = (*Reconciler)(nil)
