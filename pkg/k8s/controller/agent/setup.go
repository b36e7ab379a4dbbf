package agent

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

// configNameField indexes the node's BpfPrograms by spec.configName in the
// cache.
const configNameField = "spec.configName"

// CacheOptions returns the manager cache settings of node nodeName's agent:
// it caches its own Node, BpfNode, BpfPrograms and BpfTenantPrograms only
// (and every config and tenant config), and its node's pods: their
// metadata, and whole for tenant configs, whose pods it finds among them.
func CacheOptions(nodeName string) cache.Options {
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Node{}:               {Field: fields.OneTermEqualSelector("metadata.name", nodeName)},
		&v1alpha1.BpfNode{}:          {Field: fields.OneTermEqualSelector("metadata.name", nodeName)},
		&v1alpha1.BpfProgram{}:       {Field: fields.OneTermEqualSelector("spec.nodeName", nodeName)},
		&v1alpha1.BpfTenantProgram{}: {Field: fields.OneTermEqualSelector("spec.nodeName", nodeName)},
		podMetadata():                {Field: fields.OneTermEqualSelector("spec.nodeName", nodeName)},
		&corev1.Pod{}:                {Field: fields.OneTermEqualSelector("spec.nodeName", nodeName)},
	}}
}

// SetupWithManager registers the reconciler with mgr, whose cache must be
// set up with CacheOptions. It reconciles a config when the config's spec,
// deletion or this node's finalizer change, when the node's labels change (every
// config), when a BpfProgram of the node and config comes, goes or changes
// other than in its status, and at start
// for every config bpfd holds programs of (configs deleted while the agent
// was away among them).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.BpfProgram{}, configNameField, func(o client.Object) []string {
		return []string{o.(*v1alpha1.BpfProgram).Spec.ConfigName}
	}); err != nil {
		return fmt.Errorf("index BpfPrograms by config: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("bpfd-agent").
		// Failures retry within half a minute at most: bpfd restarting or a
		// registry coming back should not wait for the default 16 minutes.
		WithOptions(controller.Options{
			RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](250*time.Millisecond, 30*time.Second),
		}).
		For(&v1alpha1.BpfProgramConfig{}, builder.WithPredicates(configChanged{finalizer: v1alpha1.NodeFinalizer(r.nodeName)})).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.allConfigs),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Watches(&v1alpha1.BpfProgram{}, handler.EnqueueRequestsFromMapFunc(configOf), builder.WithPredicates(reportChanged{})).
		WatchesRawSource(source.Func(r.enqueueLoaded)).
		Complete(r)
}

// configChanged passes the config events that can change what this node
// runs: not the operator's status updates, nor its adding or removing other
// nodes' finalizers (with a hundred nodes, each would wake every agent).
type configChanged struct {
	predicate.Funcs
	finalizer string // this node's
}

func (p configChanged) Update(e event.UpdateEvent) bool {
	o, n := e.ObjectOld, e.ObjectNew
	return o.GetGeneration() != n.GetGeneration() ||
		!o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp()) ||
		controllerutil.ContainsFinalizer(o, p.finalizer) != controllerutil.ContainsFinalizer(n, p.finalizer)
}

// reportChanged passes the events of BpfPrograms and BpfTenantPrograms the
// agent may have to answer: creations, deletions, and updates of anything
// but the status, which is the agent's own to write (each of its status
// writes would otherwise wake it once more for nothing). Creations pass: one of a config that does not
// exist (left behind, or planted) is deleted by the reconcile it causes.
type reportChanged struct{ predicate.Funcs }

func (reportChanged) Update(e event.UpdateEvent) bool {
	o, n := e.ObjectOld, e.ObjectNew
	return o.GetGeneration() != n.GetGeneration() ||
		!o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp()) ||
		!maps.Equal(o.GetLabels(), n.GetLabels()) ||
		!slices.Equal(o.GetFinalizers(), n.GetFinalizers()) ||
		!equality.Semantic.DeepEqual(o.GetOwnerReferences(), n.GetOwnerReferences())
}

func (r *Reconciler) allConfigs(ctx context.Context, _ client.Object) []reconcile.Request {
	var list v1alpha1.BpfProgramConfigList
	if err := r.client.List(ctx, &list); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list BpfProgramConfigs")
		return nil
	}
	reqs := make([]reconcile.Request, len(list.Items))
	for i, c := range list.Items {
		reqs[i] = reconcile.Request{NamespacedName: types.NamespacedName{Name: c.Name}}
	}
	return reqs
}

func configOf(_ context.Context, o client.Object) []reconcile.Request {
	bp, ok := o.(*v1alpha1.BpfProgram)
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: bp.Spec.ConfigName}}}
}

// enqueueLoaded asks bpfd, until it answers, which configs of the kind it
// holds programs of, and queues a reconcile of each.
func (r *configReconciler) enqueueLoaded(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	go func() {
		logger := ctrl.LoggerFrom(ctx)
		for {
			programs, err := r.list(ctx, nil)
			if err == nil {
				seen := map[types.NamespacedName]bool{}
				for _, p := range programs {
					key := types.NamespacedName{Name: p.GetMetadata()[MetadataConfig]}
					if r.kind.namespaced {
						key.Namespace = p.GetMetadata()[MetadataNamespace]
					}
					if key.Name != "" && (key.Namespace != "") == r.kind.namespaced && !seen[key] {
						seen[key] = true
						q.Add(reconcile.Request{NamespacedName: key})
					}
				}
				return
			}
			logger.Info("bpfd not answering yet; retrying", "error", messageOf(err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(r.opts.RetryPeriod):
			}
		}
	}()
	return nil
}
