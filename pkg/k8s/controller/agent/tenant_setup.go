package agent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

// SetupWithManager registers the tenant reconciler with mgr, whose cache
// must be set up with CacheOptions. It reconciles a tenant config when its
// spec, deletion or this node's finalizer change, when a pod of its
// namespace on this node changes, when the node's labels or the tenant
// grant change (every tenant config), when the node's BpfTenantProgram of
// it comes, goes or changes other than in its status (reportChanged), and at
// start for every tenant config bpfd holds programs of.
func (t *TenantReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.BpfTenantProgram{}, configNameField, func(o client.Object) []string {
		return []string{o.(*v1alpha1.BpfTenantProgram).Spec.ConfigName}
	}); err != nil {
		return fmt.Errorf("index BpfTenantPrograms by config: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("bpfd-agent-tenant").
		WithOptions(controller.Options{
			RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](250*time.Millisecond, 30*time.Second),
		}).
		For(&v1alpha1.BpfTenantProgramConfig{}, builder.WithPredicates(configChanged{finalizer: v1alpha1.NodeFinalizer(t.nodeName)})).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(t.configsOfNamespace)).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(t.allConfigs),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Watches(&v1alpha1.BpfTenantGrant{}, handler.EnqueueRequestsFromMapFunc(t.allConfigs)).
		Watches(&v1alpha1.BpfTenantProgram{}, handler.EnqueueRequestsFromMapFunc(tenantConfigOf), builder.WithPredicates(reportChanged{})).
		WatchesRawSource(source.Func(t.enqueueLoaded)).
		Complete(t)
}

// configsOfNamespace returns the tenant configs of the object's namespace:
// a pod there may be selected by any of them, and by no other.
func (t *TenantReconciler) configsOfNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1alpha1.BpfTenantProgramConfigList
	if err := t.client.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list BpfTenantProgramConfigs", "namespace", o.GetNamespace())
		return nil
	}
	return tenantRequests(list.Items)
}

func (t *TenantReconciler) allConfigs(ctx context.Context, _ client.Object) []reconcile.Request {
	var list v1alpha1.BpfTenantProgramConfigList
	if err := t.client.List(ctx, &list); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list BpfTenantProgramConfigs")
		return nil
	}
	return tenantRequests(list.Items)
}

func tenantRequests(cfgs []v1alpha1.BpfTenantProgramConfig) []reconcile.Request {
	reqs := make([]reconcile.Request, len(cfgs))
	for i, c := range cfgs {
		reqs[i] = reconcile.Request{NamespacedName: types.NamespacedName{Namespace: c.Namespace, Name: c.Name}}
	}
	return reqs
}

func tenantConfigOf(_ context.Context, o client.Object) []reconcile.Request {
	b, ok := o.(*v1alpha1.BpfTenantProgram)
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: b.Namespace, Name: b.Spec.ConfigName}}}
}
