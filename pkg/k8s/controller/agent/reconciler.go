package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// Reconciler converges one node's bpfd towards the BpfProgramConfigs that
// select the node, one config per reconcile, and reports in the node's
// BpfPrograms.
type Reconciler struct {
	*configReconciler
}

// NewReconciler returns the reconciler of node nodeName. c reads configs,
// nodes and BpfPrograms (a cache, see CacheOptions) and writes BpfPrograms;
// d is the node's bpfd.
func NewReconciler(c client.Client, d Daemon, nodeName string, opts ReconcilerOptions) *Reconciler {
	return &Reconciler{newConfigReconciler(c, d, nodeName, opts, configKind{
		config: "BpfProgramConfig", report: "BpfProgram", managedBy: ManagedByAgent,
		newReport: func() reportObject { return &v1alpha1.BpfProgram{} },
		newList:   func() client.ObjectList { return &v1alpha1.BpfProgramList{} },
	})}
}

// Reconcile converges the programs of the config named in req on this node:
// loaded when the config exists, is not being deleted and selects the node;
// unloaded, with the node's BpfProgram deleted, otherwise.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	cfg := &v1alpha1.BpfProgramConfig{}
	return r.reconcile(ctx, req, cfg, func(ctx context.Context, bp reportObject) (reconcile.Result, error) {
		return r.load(ctx, cfg, bp)
	})
}

// load makes bpfd run exactly what cfg asks for on this node and reports in
// bp, the node's BpfProgram on cfg.
func (r *Reconciler) load(ctx context.Context, cfg *v1alpha1.BpfProgramConfig, bp reportObject) (reconcile.Result, error) {
	have, err := r.list(ctx, r.programsOf(client.ObjectKeyFromObject(cfg)))
	if err != nil {
		return r.failed(ctx, bp, cfg, "list programs", err, nil)
	}
	want, reason, retry, err := r.request(ctx, cfg)
	if err != nil {
		// The node runs what the config says or nothing: programs of an
		// older request go.
		if len(have) > 0 {
			if err := r.unloadPrograms(ctx, have); err != nil {
				return r.failed(ctx, bp, cfg, "unload outdated programs", err, nil)
			}
		}
		return reconcile.Result{RequeueAfter: retry}, r.report(ctx, bp, cfg, notLoaded(reason, "%v", err), nil)
	}
	if current(have, want) {
		// Who may mount the maps changes in place: the programs keep
		// running, their maps their contents.
		if have, err = r.updateReaders(ctx, have, want[0].GetOwner()); err != nil {
			return r.failed(ctx, bp, cfg, "update the owner's map reader namespaces", err, nil)
		}
		return reconcile.Result{RequeueAfter: r.opts.ResyncPeriod}, r.report(ctx, bp, cfg, loaded(have), nil)
	}
	// Anything else loaded for this config name (an older request, an older
	// config of the same name, a partial set) goes, then the requests load
	// whole. bpfd has no update in place yet, so an edit briefly leaves the
	// hooks empty.
	if len(have) > 0 {
		if err := r.unloadPrograms(ctx, have); err != nil {
			return r.failed(ctx, bp, cfg, "unload outdated programs", err, nil)
		}
		log.FromContext(ctx).Info("unloaded outdated programs", "count", len(have))
	}
	programs, err := r.loadAll(ctx, want)
	if err != nil {
		return r.failed(ctx, bp, cfg, "load", err, nil)
	}
	log.FromContext(ctx).Info("loaded", "image", cfg.Spec.Bytecode.Image, "programs", len(programs))
	return reconcile.Result{RequeueAfter: r.opts.ResyncPeriod}, r.report(ctx, bp, cfg, loaded(programs), nil)
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

var _ reconcile.Reconciler = (*Reconciler)(nil)
