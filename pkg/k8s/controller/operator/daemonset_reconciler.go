package operator

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// DaemonSetReconciler turns the bpfd-config ConfigMap into the bpfd
// DaemonSet, owned by the ConfigMap.
type DaemonSetReconciler struct {
	client    client.Client
	configMap types.NamespacedName
	defaults  Settings
}

// NewDaemonSetReconciler returns a DaemonSetReconciler for the ConfigMap
// named configMap (the DaemonSet goes to its namespace); defaults fill what
// the ConfigMap leaves out, such as the images the operator was deployed
// with.
func NewDaemonSetReconciler(c client.Client, configMap types.NamespacedName, defaults Settings) *DaemonSetReconciler {
	return &DaemonSetReconciler{client: c, configMap: configMap, defaults: defaults}
}

// Reconcile creates or corrects the DaemonSet. It updates it only when a
// field the operator sets differs from what the ConfigMap asks for, so
// fields the API server defaults cause no write, and edits by others to the
// operator's fields are undone. An invalid ConfigMap leaves the DaemonSet as
// it is.
func (r *DaemonSetReconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	cm := &corev1.ConfigMap{}
	if err := r.client.Get(ctx, r.configMap, cm); apierrors.IsNotFound(err) {
		return reconcile.Result{}, nil // the DaemonSet, owned by it, goes with it
	} else if err != nil {
		return reconcile.Result{}, fmt.Errorf("ConfigMap %s: %w", r.configMap, err)
	}
	s, err := SettingsFromConfigMap(cm, r.defaults)
	if err != nil {
		return reconcile.Result{}, reconcile.TerminalError(err)
	}
	want := DaemonSet(cm.Namespace, s)
	want.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: "v1", Kind: "ConfigMap", Name: cm.Name, UID: cm.UID, Controller: ptr.To(true),
	}}

	have := &appsv1.DaemonSet{}
	err = r.client.Get(ctx, client.ObjectKeyFromObject(want), have)
	if apierrors.IsNotFound(err) {
		if err := r.client.Create(ctx, want); err != nil {
			return reconcile.Result{}, fmt.Errorf("create DaemonSet %s: %w", want.Name, err)
		}
		log.FromContext(ctx).Info("created the bpfd DaemonSet", "bpfd_image", s.BpfdImage, "agent_image", s.AgentImage)
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("DaemonSet %s: %w", want.Name, err)
	}
	if equality.Semantic.DeepDerivative(want.Spec, have.Spec) &&
		equality.Semantic.DeepDerivative(want.Labels, have.Labels) &&
		equality.Semantic.DeepEqual(want.OwnerReferences, have.OwnerReferences) {
		return reconcile.Result{}, nil
	}
	have = have.DeepCopy()
	have.Spec = want.Spec
	have.OwnerReferences = want.OwnerReferences
	if have.Labels == nil {
		have.Labels = map[string]string{}
	}
	for k, v := range want.Labels {
		have.Labels[k] = v
	}
	if err := r.client.Update(ctx, have); err != nil {
		return reconcile.Result{}, fmt.Errorf("update DaemonSet %s: %w", have.Name, err)
	}
	log.FromContext(ctx).Info("updated the bpfd DaemonSet", "bpfd_image", s.BpfdImage, "agent_image", s.AgentImage)
	return reconcile.Result{}, nil
}

// SetupWithManager registers the reconciler with mgr: it runs when the
// ConfigMap changes and when the DaemonSet's spec changes or it is deleted.
func (r *DaemonSetReconciler) SetupWithManager(mgr ctrl.Manager) error {
	isConfigMap := predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetNamespace() == r.configMap.Namespace && o.GetName() == r.configMap.Name
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("bpfd-daemonset").
		For(&corev1.ConfigMap{}, builder.WithPredicates(isConfigMap)).
		Owns(&appsv1.DaemonSet{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(r)
}

var _ reconcile.Reconciler = (*DaemonSetReconciler)(nil)
