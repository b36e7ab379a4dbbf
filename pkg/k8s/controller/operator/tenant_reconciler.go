package operator

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

// TenantConfigReconciler keeps each BpfTenantProgramConfig's node
// finalizers and status, as ConfigReconciler does for BpfProgramConfigs,
// from the BpfTenantPrograms beside it.
type TenantConfigReconciler struct {
	nodes *ConfigReconciler // nodeGone
}

// NewTenantConfigReconciler returns a TenantConfigReconciler reading and
// writing through c and checking nodes through live, as
// NewConfigReconciler.
func NewTenantConfigReconciler(c client.Client, live client.Reader) *TenantConfigReconciler {
	return &TenantConfigReconciler{nodes: NewConfigReconciler(c, live, ConfigReconcilerOptions{})}
}

// Reconcile brings the tenant config named in req up to date with the nodes
// and their BpfTenantPrograms: node finalizers, reports of nodes that are
// gone, status.
func (t *TenantConfigReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	c := t.nodes.client
	cfg := &v1alpha1.BpfTenantProgramConfig{}
	if err := c.Get(ctx, req.NamespacedName, cfg); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	nodes := &metav1.PartialObjectMetadataList{}
	nodes.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NodeList"))
	if err := c.List(ctx, nodes); err != nil {
		return reconcile.Result{}, fmt.Errorf("list nodes: %w", err)
	}
	var btps v1alpha1.BpfTenantProgramList
	if err := c.List(ctx, &btps, client.InNamespace(cfg.Namespace), client.MatchingFields{configNameField: cfg.Name}); err != nil {
		return reconcile.Result{}, fmt.Errorf("list BpfTenantPrograms of %s: %w", req, err)
	}
	selected := make(map[string]bool, len(nodes.Items))
	for _, n := range nodes.Items {
		ok, err := cfg.SelectsNode(n.Labels)
		if err != nil {
			return reconcile.Result{}, reconcile.TerminalError(err)
		}
		selected[n.Name] = ok
	}
	reports := map[string]*v1alpha1.BpfProgramStatus{}
	var reporting []string
	for i := range btps.Items {
		b := &btps.Items[i]
		if b.Namespace != cfg.Namespace || b.Spec.ConfigName != cfg.Name {
			continue
		}
		if _, exists := selected[b.Spec.NodeName]; !exists {
			gone, err := t.nodes.nodeGone(ctx, b.Spec.NodeName)
			if err != nil {
				return reconcile.Result{}, err
			}
			if !gone {
				return reconcile.Result{RequeueAfter: time.Second}, nil
			}
			if err := c.Delete(ctx, b, client.Preconditions{UID: &b.UID}); err != nil && !apierrors.IsNotFound(err) {
				return reconcile.Result{}, fmt.Errorf("delete BpfTenantProgram %s/%s of vanished node %s: %w", b.Namespace, b.Name, b.Spec.NodeName, err)
			}
			log.FromContext(ctx).Info("deleted the BpfTenantProgram of a vanished node", "node", b.Spec.NodeName)
			continue
		}
		reporting = append(reporting, b.Spec.NodeName)
		if b.Reports(cfg.Name, cfg.UID, b.Spec.NodeName) {
			reports[b.Spec.NodeName] = &b.Status
		}
	}
	if want := nodeFinalizers(cfg.Finalizers, !cfg.DeletionTimestamp.IsZero(), selected, reporting); !slices.Equal(want, cfg.Finalizers) {
		cfg = cfg.DeepCopy()
		cfg.Finalizers = want
		if err := c.Update(ctx, cfg); err != nil {
			return reconcile.Result{}, fmt.Errorf("update finalizers of %s: %w", req, err)
		}
	}
	if !cfg.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil
	}
	if st := aggregateStatus(cfg.Generation, cfg.Status, selected, reports); !equality.Semantic.DeepEqual(st, cfg.Status) {
		cfg = cfg.DeepCopy()
		cfg.Status = st
		if err := c.Status().Update(ctx, cfg); err != nil {
			return reconcile.Result{}, fmt.Errorf("update status of %s: %w", req, err)
		}
	}
	return reconcile.Result{}, nil
}

// SetupWithManager registers the reconciler with mgr. It reconciles a
// tenant config when its spec, finalizers or deletion change, when one of
// its BpfTenantPrograms changes, and (all tenant configs) when a node comes,
// goes or changes labels.
func (t *TenantConfigReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.BpfTenantProgram{}, configNameField, func(o client.Object) []string {
		return []string{o.(*v1alpha1.BpfTenantProgram).Spec.ConfigName}
	}); err != nil {
		return fmt.Errorf("index BpfTenantPrograms by config: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("bpftenantprogramconfig").
		For(&v1alpha1.BpfTenantProgramConfig{}, builder.WithPredicates(specOrLifecycleChanged{})).
		Watches(&v1alpha1.BpfTenantProgram{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			b := o.(*v1alpha1.BpfTenantProgram)
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: b.Namespace, Name: b.Spec.ConfigName}}}
		})).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(t.allConfigs),
			builder.OnlyMetadata, builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Complete(t)
}

func (t *TenantConfigReconciler) allConfigs(ctx context.Context, _ client.Object) []reconcile.Request {
	var list v1alpha1.BpfTenantProgramConfigList
	if err := t.nodes.client.List(ctx, &list); err != nil {
		log.FromContext(ctx).Error(err, "list BpfTenantProgramConfigs")
		return nil
	}
	reqs := make([]reconcile.Request, len(list.Items))
	for i, c := range list.Items {
		reqs[i] = reconcile.Request{NamespacedName: types.NamespacedName{Namespace: c.Namespace, Name: c.Name}}
	}
	return reqs
}

var _ reconcile.Reconciler = (*TenantConfigReconciler)(nil)
