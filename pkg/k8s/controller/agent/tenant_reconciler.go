package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"

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

// TenantReconciler converges one node's bpfd towards the
// BpfTenantProgramConfigs that select the node, one config per reconcile,
// for the config's selected pods on the node, and reports in the node's
// BpfTenantPrograms beside each config.
type TenantReconciler struct {
	// r holds the client, daemon, node and options, and loads, unloads and
	// lists as for cluster-scoped configs.
	r    *Reconciler
	pods PodScanner
}

// NewTenantReconciler returns the tenant reconciler of node nodeName. c
// reads tenant configs, the tenant grant, this node's pods (a cache, see
// CacheOptions) and BpfTenantPrograms, and writes BpfTenantPrograms; d is the
// node's bpfd; pods finds the pods' processes.
func NewTenantReconciler(c client.Client, d Daemon, nodeName string, pods PodScanner, opts ReconcilerOptions) *TenantReconciler {
	return &TenantReconciler{r: NewReconciler(c, d, nodeName, opts), pods: pods}
}

// Reconcile converges the programs of the tenant config named in req on this
// node: loaded for the selected pods here when the config exists, is not
// being deleted and selects the node; unloaded, with the node's
// BpfTenantProgram deleted, otherwise.
func (t *TenantReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	r := t.r
	cfg := &v1alpha1.BpfTenantProgramConfig{}
	if err := r.client.Get(ctx, req.NamespacedName, cfg); apierrors.IsNotFound(err) {
		cfg = nil
	} else if err != nil {
		return reconcile.Result{}, fmt.Errorf("BpfTenantProgramConfig %s: %w", req, err)
	}
	node := &corev1.Node{}
	if err := r.client.Get(ctx, types.NamespacedName{Name: r.nodeName}, node); err != nil {
		return reconcile.Result{}, fmt.Errorf("node %s: %w", r.nodeName, err)
	}
	btps, err := t.reports(ctx, req.Namespace, req.Name)
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
		return reconcile.Result{}, t.unload(ctx, req.NamespacedName, cfg, btps)
	}
	return t.load(ctx, cfg, btps)
}

// tenantSelector returns the metadata bpfd's List finds the programs of
// the tenant config key by.
func tenantSelector(key types.NamespacedName) map[string]string {
	return map[string]string{MetadataManagedBy: ManagedByAgentTenant, MetadataNamespace: key.Namespace, MetadataConfig: key.Name}
}

// reports returns this node's BpfTenantPrograms in namespace whose spec
// names the config called name.
func (t *TenantReconciler) reports(ctx context.Context, namespace, name string) ([]*v1alpha1.BpfTenantProgram, error) {
	var list v1alpha1.BpfTenantProgramList
	if err := t.r.client.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{configNameField: name}); err != nil {
		return nil, fmt.Errorf("BpfTenantPrograms of %s/%s: %w", namespace, name, err)
	}
	var out []*v1alpha1.BpfTenantProgram
	for i := range list.Items {
		if b := &list.Items[i]; b.Namespace == namespace && b.Spec.NodeName == t.r.nodeName && b.Spec.ConfigName == name {
			out = append(out, b)
		}
	}
	return out, nil
}

func (t *TenantReconciler) load(ctx context.Context, cfg *v1alpha1.BpfTenantProgramConfig, btps []*v1alpha1.BpfTenantProgram) (reconcile.Result, error) {
	r := t.r
	btp, err := t.ensureReport(ctx, cfg, btps)
	if err != nil {
		return reconcile.Result{}, err
	}
	if fin := v1alpha1.NodeFinalizer(r.nodeName); !controllerutil.ContainsFinalizer(cfg, fin) {
		return reconcile.Result{}, t.report(ctx, btp, cfg, notLoaded(v1alpha1.ReasonPending,
			"waiting for bpfd-operator to add finalizer %s to the config", fin), nil)
	}
	key := types.NamespacedName{Namespace: cfg.Namespace, Name: cfg.Name}
	have, err := r.list(ctx, tenantSelector(key))
	if err != nil {
		return t.failed(ctx, btp, cfg, "list programs", err, nil)
	}
	pods, err := selectedPods(ctx, r.client, cfg, r.nodeName)
	if err != nil {
		return reconcile.Result{}, err
	}
	resolved, err := resolvePods(t.pods, pods)
	if err != nil {
		return reconcile.Result{}, err
	}
	// Pods that have not started their processes yet are looked at again
	// soon; their status changes wake the reconcile too.
	retry := r.opts.ResyncPeriod
	if len(resolved) < len(pods) {
		retry = r.opts.RetryPeriod
	}
	grants, err := t.grants(ctx, cfg.Namespace)
	if err != nil {
		return reconcile.Result{}, err
	}
	want, err := TenantLoadRequests(cfg, resolved, grants)
	if err != nil {
		if len(have) > 0 {
			if err := r.unloadPrograms(ctx, have); err != nil {
				return t.failed(ctx, btp, cfg, "unload outdated programs", err, nil)
			}
		}
		reason := v1alpha1.ReasonInvalidRequest
		if errors.Is(err, ErrTenantScope) {
			reason = v1alpha1.ReasonPolicyDenied
		}
		return reconcile.Result{RequeueAfter: r.opts.ResyncPeriod}, t.report(ctx, btp, cfg, notLoaded(reason, "%v", err), nil)
	}
	podOf := podOfPID(resolved)
	if len(want) == 0 {
		if len(have) > 0 {
			if err := r.unloadPrograms(ctx, have); err != nil {
				return t.failed(ctx, btp, cfg, "unload the programs of pods gone", err, podOf)
			}
			log.FromContext(ctx).Info("unloaded: no selected pod to attach in", "programs", len(have))
		}
		return reconcile.Result{RequeueAfter: retry}, t.report(ctx, btp, cfg, nodeReport{ready: ready(metav1.ConditionTrue, v1alpha1.ReasonLoaded,
			fmt.Sprintf("nothing to load: %d selected pods on this node, none with the processes the programs attach in", len(pods)))}, podOf)
	}
	if current(have, want) {
		return reconcile.Result{RequeueAfter: retry}, t.report(ctx, btp, cfg, loaded(have), podOf)
	}
	if len(have) > 0 {
		if err := r.unloadPrograms(ctx, have); err != nil {
			return t.failed(ctx, btp, cfg, "unload outdated programs", err, podOf)
		}
		log.FromContext(ctx).Info("unloaded outdated programs", "count", len(have))
	}
	programs, err := r.loadAll(ctx, want)
	if err != nil {
		return t.failed(ctx, btp, cfg, "load", err, podOf)
	}
	log.FromContext(ctx).Info("loaded", "image", cfg.Spec.Bytecode.Image, "programs", len(programs), "pods", len(resolved))
	return reconcile.Result{RequeueAfter: retry}, t.report(ctx, btp, cfg, loaded(programs), podOf)
}

// grants returns the program types the cluster's BpfTenantGrant grants
// namespace; none without it.
func (t *TenantReconciler) grants(ctx context.Context, namespace string) ([]v1alpha1.ProgramType, error) {
	g := &v1alpha1.BpfTenantGrant{}
	err := t.r.client.Get(ctx, types.NamespacedName{Name: v1alpha1.TenantGrantName}, g)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("BpfTenantGrant %s: %w", v1alpha1.TenantGrantName, err)
	}
	return g.Granted(namespace), nil
}

func (t *TenantReconciler) failed(ctx context.Context, btp *v1alpha1.BpfTenantProgram, cfg *v1alpha1.BpfTenantProgramConfig, what string, err error, podOf map[int]string) (reconcile.Result, error) {
	reason := reasonOf(err)
	if werr := t.report(ctx, btp, cfg, notLoaded(reason, "%s: %s", what, messageOf(err)), podOf); werr != nil {
		return reconcile.Result{}, werr
	}
	if retryable(reason) {
		return reconcile.Result{}, fmt.Errorf("%s %s/%s: %w", what, cfg.Namespace, cfg.Name, err)
	}
	log.FromContext(ctx).Info("bpfd refused the tenant config", "reason", reason, "message", messageOf(err))
	return reconcile.Result{RequeueAfter: t.r.opts.ResyncPeriod}, nil
}

// unload removes whatever bpfd holds for the tenant config key and, once
// that is done, the node's BpfTenantPrograms of it.
func (t *TenantReconciler) unload(ctx context.Context, key types.NamespacedName, cfg *v1alpha1.BpfTenantProgramConfig, btps []*v1alpha1.BpfTenantProgram) error {
	r := t.r
	have, err := r.list(ctx, tenantSelector(key))
	if err == nil && len(have) > 0 {
		if err = r.unloadPrograms(ctx, have); err == nil {
			log.FromContext(ctx).Info("unloaded", "programs", len(have))
		}
	}
	if err != nil {
		if cfg != nil {
			for _, b := range btps {
				if b.Reports(cfg.Name, cfg.UID, r.nodeName) {
					if werr := t.report(ctx, b, cfg, notLoaded(v1alpha1.ReasonUnloading, "unload: %s", messageOf(err)), nil); werr != nil {
						return werr
					}
				}
			}
		}
		return fmt.Errorf("unload %s: %w", key, err)
	}
	for _, b := range btps {
		if err := t.delete(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

func (t *TenantReconciler) delete(ctx context.Context, b *v1alpha1.BpfTenantProgram) error {
	if err := t.r.client.Delete(ctx, b, client.Preconditions{UID: &b.UID}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete BpfTenantProgram %s/%s: %w", b.Namespace, b.Name, err)
	}
	t.r.written.forget(b.UID)
	return nil
}

// ensureReport returns the node's report on cfg, as ensureBpfProgram does
// for cluster-scoped configs: the BpfTenantProgram in cfg's namespace named
// BpfProgramName(cfg, node), controlled by cfg; others of the node and
// config are deleted.
func (t *TenantReconciler) ensureReport(ctx context.Context, cfg *v1alpha1.BpfTenantProgramConfig, btps []*v1alpha1.BpfTenantProgram) (*v1alpha1.BpfTenantProgram, error) {
	r := t.r
	name := v1alpha1.BpfProgramName(cfg.Name, r.nodeName)
	labels := v1alpha1.BpfProgramLabels(cfg.Name, r.nodeName, cfg.UID)
	var btp *v1alpha1.BpfTenantProgram
	var others []*v1alpha1.BpfTenantProgram
	for _, o := range btps {
		switch {
		case o.Reports(cfg.Name, cfg.UID, r.nodeName):
			btp = o
		case o.Name == name:
			if err := t.delete(ctx, o); err != nil {
				return nil, err
			}
		default:
			others = append(others, o)
		}
	}
	if btp == nil {
		btp = &v1alpha1.BpfTenantProgram{
			ObjectMeta: metav1.ObjectMeta{Namespace: cfg.Namespace, Name: name, Labels: labels, OwnerReferences: []metav1.OwnerReference{{
				APIVersion: v1alpha1.GroupVersion.String(),
				Kind:       "BpfTenantProgramConfig",
				Name:       cfg.Name,
				UID:        cfg.UID,
				Controller: ptr.To(true),
			}}},
			Spec: v1alpha1.BpfProgramSpec{NodeName: r.nodeName, ConfigName: cfg.Name},
		}
		if err := r.client.Create(ctx, btp); apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create BpfTenantProgram %s/%s: %w: an object of that name exists that this node's cache does not hold as its report on %s; nothing is loaded while it is there", cfg.Namespace, name, ErrNameTaken, cfg.Name)
		} else if err != nil {
			return nil, fmt.Errorf("create BpfTenantProgram %s/%s: %w", cfg.Namespace, name, err)
		}
	} else if !maps.Equal(btp.Labels, labels) {
		btp = btp.DeepCopy()
		btp.Labels = labels
		if err := r.client.Update(ctx, btp); err != nil {
			return nil, fmt.Errorf("update BpfTenantProgram %s/%s: %w", btp.Namespace, btp.Name, err)
		}
	}
	for _, o := range others {
		if err := t.delete(ctx, o); err != nil {
			return nil, err
		}
	}
	return btp, nil
}

// report writes rep into btp's status, unless the status already says so;
// podOf maps the pids the programs attach by to their pods.
func (t *TenantReconciler) report(ctx context.Context, btp *v1alpha1.BpfTenantProgram, cfg *v1alpha1.BpfTenantProgramConfig, rep nodeReport, podOf map[int]string) error {
	prev, version := t.r.written.current(btp, btp.Status)
	st := rep.status(prev, btp.Generation, cfg.Generation, func(p *bpfdv1.Program) string { return programPod(p, podOf) })
	if equality.Semantic.DeepEqual(st, prev) {
		return nil
	}
	btp = btp.DeepCopy()
	btp.ResourceVersion, btp.Status = version, st
	if err := t.r.client.Status().Update(ctx, btp); err != nil {
		return fmt.Errorf("update status of BpfTenantProgram %s/%s: %w", btp.Namespace, btp.Name, err)
	}
	t.r.written.wrote(btp, version, st)
	return nil
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
