package operator

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

// configNameField indexes BpfPrograms by spec.configName in the cache.
const configNameField = "spec.configName"

// ConfigReconciler keeps each BpfProgramConfig's node finalizers and status.
type ConfigReconciler struct {
	client client.Client
	live   client.Reader
	opts   ConfigReconcilerOptions

	mu sync.Mutex
	// wrote is when each config's status was last written, by name.
	wrote map[string]time.Time
}

// ConfigReconcilerOptions are the ConfigReconciler's optional settings.
type ConfigReconcilerOptions struct {
	// ProgressInterval is, per 100 nodes the config selects (at least
	// once), the shortest time between two writes of a config's status
	// that only count progress: the same generation, every condition's
	// status and reason unchanged, more or fewer nodes loaded. Every agent
	// watches every config, and a config carries a finalizer per node, so
	// each write sends every node an object that grows with the nodes; a
	// rollout would otherwise write once per node's report. Other changes
	// are written at once. Zero means DefaultProgressInterval.
	ProgressInterval time.Duration
}

// DefaultProgressInterval is ConfigReconcilerOptions.ProgressInterval's
// default.
const DefaultProgressInterval = 2 * time.Second

// NewConfigReconciler returns a ConfigReconciler that reads through c (the
// manager's cache) and writes configs and deletes BpfPrograms through it;
// live reads from the API server directly, to make sure a node is gone
// before its BpfPrograms are deleted.
func NewConfigReconciler(c client.Client, live client.Reader, opts ConfigReconcilerOptions) *ConfigReconciler {
	if opts.ProgressInterval == 0 {
		opts.ProgressInterval = DefaultProgressInterval
	}
	return &ConfigReconciler{client: c, live: live, opts: opts, wrote: map[string]time.Time{}}
}

// Reconcile brings the config named in req up to date with the nodes and
// their BpfPrograms: node finalizers, BpfPrograms of nodes that are gone,
// status. It writes nothing when all of that is as it should be.
func (r *ConfigReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	cfg := &v1alpha1.BpfProgramConfig{}
	if err := r.client.Get(ctx, req.NamespacedName, cfg); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.Name)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	nodes := &metav1.PartialObjectMetadataList{}
	nodes.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NodeList"))
	if err := r.client.List(ctx, nodes); err != nil {
		return reconcile.Result{}, fmt.Errorf("list nodes: %w", err)
	}
	var bps v1alpha1.BpfProgramList
	if err := r.client.List(ctx, &bps, client.MatchingFields{configNameField: cfg.Name}); err != nil {
		return reconcile.Result{}, fmt.Errorf("list BpfPrograms of %s: %w", cfg.Name, err)
	}

	selected := make(map[string]bool, len(nodes.Items))
	for _, n := range nodes.Items {
		ok, err := cfg.SelectsNode(n.Labels)
		if err != nil {
			return reconcile.Result{}, reconcile.TerminalError(err)
		}
		selected[n.Name] = ok
	}
	reports := make(map[string]*v1alpha1.BpfProgram, len(bps.Items))
	var reporting []string
	for i := range bps.Items {
		bp := &bps.Items[i]
		if _, exists := selected[bp.Spec.NodeName]; !exists {
			// No agent will ever unload or report from a node that is
			// gone, and nothing else deletes this BpfProgram. The cache
			// may not know a new node yet: ask the API server.
			gone, err := r.nodeGone(ctx, bp.Spec.NodeName)
			if err != nil {
				return reconcile.Result{}, err
			}
			if !gone {
				return reconcile.Result{RequeueAfter: time.Second}, nil
			}
			if err := r.client.Delete(ctx, bp, client.Preconditions{UID: &bp.UID}); err != nil && !apierrors.IsNotFound(err) {
				return reconcile.Result{}, fmt.Errorf("delete BpfProgram %s of vanished node %s: %w", bp.Name, bp.Spec.NodeName, err)
			}
			log.FromContext(ctx).Info("deleted the BpfProgram of a vanished node", "node", bp.Spec.NodeName)
			continue
		}
		// Any BpfProgram of the node keeps its finalizer (the node may hold
		// programs: an older agent reported under <config>-<node>), but
		// only the node's report counts in the status: the object
		// BpfProgramName names, controlled by this very config.
		reporting = append(reporting, bp.Spec.NodeName)
		if bp.Reports(cfg.Name, cfg.UID, bp.Spec.NodeName) {
			reports[bp.Spec.NodeName] = bp
		}
	}

	if want := finalizers(cfg, selected, reporting); !slices.Equal(want, cfg.Finalizers) {
		cfg = cfg.DeepCopy()
		cfg.Finalizers = want
		if err := r.client.Update(ctx, cfg); err != nil {
			return reconcile.Result{}, fmt.Errorf("update finalizers of %s: %w", cfg.Name, err)
		}
	}
	if !cfg.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil
	}
	if st := aggregate(cfg, selected, reports); !equality.Semantic.DeepEqual(st, cfg.Status) {
		if wait := r.holdProgress(cfg, st); wait > 0 {
			return reconcile.Result{RequeueAfter: wait}, nil
		}
		cfg = cfg.DeepCopy()
		cfg.Status = st
		if err := r.client.Status().Update(ctx, cfg); err != nil {
			return reconcile.Result{}, fmt.Errorf("update status of %s: %w", cfg.Name, err)
		}
		r.mu.Lock()
		r.wrote[cfg.Name] = time.Now()
		r.mu.Unlock()
	}
	return reconcile.Result{}, nil
}

// holdProgress returns how long to wait before writing st, cfg's new
// status, when st only counts progress and the last write was more recent
// than the interval ProgressInterval gives; zero to write it now.
func (r *ConfigReconciler) holdProgress(cfg *v1alpha1.BpfProgramConfig, st v1alpha1.BpfProgramConfigStatus) time.Duration {
	if !progressOnly(cfg.Status, st) {
		return 0
	}
	r.mu.Lock()
	last, ok := r.wrote[cfg.Name]
	r.mu.Unlock()
	if !ok {
		return 0
	}
	return time.Until(last.Add(r.opts.ProgressInterval * time.Duration(max(1, st.NodesSelected/100))))
}

// progressOnly reports whether new says what old says but for counts and
// messages: the same generation, the same conditions with the same status
// and reason.
func progressOnly(old, new v1alpha1.BpfProgramConfigStatus) bool {
	if old.ObservedGeneration != new.ObservedGeneration || len(old.Conditions) != len(new.Conditions) {
		return false
	}
	for _, c := range new.Conditions {
		o := meta.FindStatusCondition(old.Conditions, c.Type)
		if o == nil || o.Status != c.Status || o.Reason != c.Reason {
			return false
		}
	}
	return true
}

// forget drops what the reconciler remembers of a config that is gone.
func (r *ConfigReconciler) forget(name string) {
	r.mu.Lock()
	delete(r.wrote, name)
	r.mu.Unlock()
}

func (r *ConfigReconciler) nodeGone(ctx context.Context, name string) (bool, error) {
	node := &metav1.PartialObjectMetadata{}
	node.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Node"))
	err := r.live.Get(ctx, types.NamespacedName{Name: name}, node)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("node %s: %w", name, err)
	}
	return false, nil
}

// SetupWithManager registers the reconciler with mgr. It reconciles a config
// when its spec, finalizers or deletion change, when one of its BpfPrograms
// changes, and (all configs) when a node comes, goes or changes labels.
func (r *ConfigReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.BpfProgram{}, configNameField, func(o client.Object) []string {
		return []string{o.(*v1alpha1.BpfProgram).Spec.ConfigName}
	}); err != nil {
		return fmt.Errorf("index BpfPrograms by config: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("bpfprogramconfig").
		For(&v1alpha1.BpfProgramConfig{}, builder.WithPredicates(specOrLifecycleChanged{})).
		Watches(&v1alpha1.BpfProgram{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: o.(*v1alpha1.BpfProgram).Spec.ConfigName}}}
		})).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.allConfigs),
			builder.OnlyMetadata, builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Complete(r)
}

// specOrLifecycleChanged passes config events other than status updates.
type specOrLifecycleChanged struct{ predicate.Funcs }

func (specOrLifecycleChanged) Update(e event.UpdateEvent) bool {
	o, n := e.ObjectOld, e.ObjectNew
	return o.GetGeneration() != n.GetGeneration() ||
		!o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp()) ||
		!slices.Equal(o.GetFinalizers(), n.GetFinalizers())
}

func (r *ConfigReconciler) allConfigs(ctx context.Context, _ client.Object) []reconcile.Request {
	var list v1alpha1.BpfProgramConfigList
	if err := r.client.List(ctx, &list); err != nil {
		log.FromContext(ctx).Error(err, "list BpfProgramConfigs")
		return nil
	}
	reqs := make([]reconcile.Request, len(list.Items))
	for i, c := range list.Items {
		reqs[i] = reconcile.Request{NamespacedName: types.NamespacedName{Name: c.Name}}
	}
	return reqs
}

var _ reconcile.Reconciler = (*ConfigReconciler)(nil)
