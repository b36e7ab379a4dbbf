package agent

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// TenantReconciler converges one node's bpfd towards the
// BpfTenantProgramConfigs that select the node, one config per reconcile,
// for the config's selected pods on the node, and reports in the node's
// BpfTenantPrograms beside each config.
type TenantReconciler struct {
	*configReconciler
	pods PodScanner
}

// NewTenantReconciler returns the tenant reconciler of node nodeName. c
// reads tenant configs, the tenant grant, this node's pods (a cache, see
// CacheOptions) and BpfTenantPrograms, and writes BpfTenantPrograms; d is the
// node's bpfd; pods finds the pods' processes.
func NewTenantReconciler(c client.Client, d Daemon, nodeName string, pods PodScanner, opts ReconcilerOptions) *TenantReconciler {
	return &TenantReconciler{configReconciler: newConfigReconciler(c, d, nodeName, opts, configKind{
		config: "BpfTenantProgramConfig", report: "BpfTenantProgram", namespaced: true, managedBy: ManagedByAgentTenant,
		newReport: func() reportObject { return &v1alpha1.BpfTenantProgram{} },
		newList:   func() client.ObjectList { return &v1alpha1.BpfTenantProgramList{} },
	}), pods: pods}
}

// Reconcile converges the programs of the tenant config named in req on this
// node: loaded for the selected pods here when the config exists, is not
// being deleted and selects the node; unloaded, with the node's
// BpfTenantProgram deleted, otherwise.
func (t *TenantReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	cfg := &v1alpha1.BpfTenantProgramConfig{}
	return t.reconcile(ctx, req, cfg, func(ctx context.Context, btp reportObject) (reconcile.Result, error) {
		return t.load(ctx, cfg, btp)
	})
}

// load makes bpfd run cfg's programs in the selected pods on this node and
// reports in btp, the node's BpfTenantProgram on cfg.
func (t *TenantReconciler) load(ctx context.Context, cfg *v1alpha1.BpfTenantProgramConfig, btp reportObject) (reconcile.Result, error) {
	have, err := t.list(ctx, t.programsOf(client.ObjectKeyFromObject(cfg)))
	if err != nil {
		return t.failed(ctx, btp, cfg, "list programs", err, nil)
	}
	pods, err := selectedPods(ctx, t.client, cfg, t.nodeName)
	if err != nil {
		return reconcile.Result{}, err
	}
	resolved, err := resolvePods(t.pods, pods)
	if err != nil {
		return reconcile.Result{}, err
	}
	// Pods that have not started their processes yet are looked at again
	// soon; their status changes wake the reconcile too.
	retry := t.opts.ResyncPeriod
	if len(resolved) < len(pods) {
		retry = t.opts.RetryPeriod
	}
	grants, err := t.grants(ctx, cfg.Namespace)
	if err != nil {
		return reconcile.Result{}, err
	}
	want, err := TenantLoadRequests(cfg, resolved, grants)
	if err != nil {
		if len(have) > 0 {
			if err := t.unloadPrograms(ctx, have); err != nil {
				return t.failed(ctx, btp, cfg, "unload outdated programs", err, nil)
			}
		}
		reason := v1alpha1.ReasonInvalidRequest
		if errors.Is(err, ErrTenantScope) {
			reason = v1alpha1.ReasonPolicyDenied
		}
		return reconcile.Result{RequeueAfter: t.opts.ResyncPeriod}, t.report(ctx, btp, cfg, notLoaded(reason, "%v", err), nil)
	}
	podOf := podOfPID(resolved)
	pod := func(p *bpfdv1.Program) string { return programPod(p, podOf) }
	if len(want) == 0 {
		if len(have) > 0 {
			if err := t.unloadPrograms(ctx, have); err != nil {
				return t.failed(ctx, btp, cfg, "unload the programs of pods gone", err, pod)
			}
			log.FromContext(ctx).Info("unloaded: no selected pod to attach in", "programs", len(have))
		}
		return reconcile.Result{RequeueAfter: retry}, t.report(ctx, btp, cfg, nodeReport{ready: ready(metav1.ConditionTrue, v1alpha1.ReasonLoaded,
			fmt.Sprintf("nothing to load: %d selected pods on this node, none with the processes the programs attach in", len(pods)))}, pod)
	}
	if current(have, want) {
		return reconcile.Result{RequeueAfter: retry}, t.report(ctx, btp, cfg, loaded(have), pod)
	}
	if len(have) > 0 {
		if err := t.unloadPrograms(ctx, have); err != nil {
			return t.failed(ctx, btp, cfg, "unload outdated programs", err, pod)
		}
		log.FromContext(ctx).Info("unloaded outdated programs", "count", len(have))
	}
	programs, err := t.loadAll(ctx, want)
	if err != nil {
		return t.failed(ctx, btp, cfg, "load", err, pod)
	}
	log.FromContext(ctx).Info("loaded", "image", cfg.Spec.Bytecode.Image, "programs", len(programs), "pods", len(resolved))
	return reconcile.Result{RequeueAfter: retry}, t.report(ctx, btp, cfg, loaded(programs), pod)
}

// grants returns the program types the cluster's BpfTenantGrant grants
// namespace; none without it.
func (t *TenantReconciler) grants(ctx context.Context, namespace string) ([]v1alpha1.ProgramType, error) {
	g := &v1alpha1.BpfTenantGrant{}
	err := t.client.Get(ctx, types.NamespacedName{Name: v1alpha1.TenantGrantName}, g)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("BpfTenantGrant %s: %w", v1alpha1.TenantGrantName, err)
	}
	return g.Granted(namespace), nil
}

// programPod returns the pod a tenant program is attached in, by the
// process its attachment names; "" when it is the node's.
func programPod(p *bpfdv1.Program, podOf map[int]string) string {
	pid := 0
	switch s := p.GetAttach().GetSpec().(type) {
	case *bpfdv1.AttachSpec_Xdp:
		pid = netnsPID(s.Xdp.GetNetns())
	case *bpfdv1.AttachSpec_Tc:
		pid = netnsPID(s.Tc.GetNetns())
	case *bpfdv1.AttachSpec_Tcx:
		pid = netnsPID(s.Tcx.GetNetns())
	case *bpfdv1.AttachSpec_Uprobe:
		pid = int(s.Uprobe.GetContainerPid())
	}
	return podOf[pid]
}

// netnsPID returns the pid of a "/proc/<pid>/ns/net" path, 0 for another.
func netnsPID(path string) int {
	rest, ok := strings.CutPrefix(path, "/proc/")
	if !ok {
		return 0
	}
	s, ok := strings.CutSuffix(rest, "/ns/net")
	if !ok {
		return 0
	}
	pid, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return pid
}

var _ reconcile.Reconciler = (*TenantReconciler)(nil)
