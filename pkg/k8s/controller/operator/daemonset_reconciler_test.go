package operator_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bpfd-dev/bpfd/internal/testing/k8stest"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/operator"
)

func TestOperatorDaemonSet(t *testing.T) {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: k8stest.Name(t) + "-"}}
	if err := testEnv.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: operator.ConfigMapName},
		Data:       map[string]string{operator.KeyRegistryCredentials: "pull-secret"},
	}
	if err := testEnv.Client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	var writes *k8stest.WriteCounter
	testEnv.StartManager(t, ctrl.Options{Cache: operator.CacheOptions(ns.Name)}, func(mgr ctrl.Manager) error {
		writes = k8stest.CountWrites(mgr.GetClient())
		return operator.NewDaemonSetReconciler(writes, types.NamespacedName{Namespace: ns.Name, Name: operator.ConfigMapName},
			operator.Settings{BpfdImage: "bpfd:1", AgentImage: "agent:1"}).SetupWithManager(mgr)
	})

	ds := &appsv1.DaemonSet{}
	key := client.ObjectKey{Namespace: ns.Name, Name: operator.DaemonSetName}
	waitDaemonSet := func(check func(*appsv1.DaemonSet) error) {
		t.Helper()
		k8stest.Eventually(t, timeout, func() error {
			if err := testEnv.Client.Get(ctx, key, ds); err != nil {
				return err
			}
			return check(ds)
		})
	}
	images := func(bpfd, agent string) func(*appsv1.DaemonSet) error {
		return func(ds *appsv1.DaemonSet) error {
			c := ds.Spec.Template.Spec.Containers
			if len(c) != 3 || c[0].Image != bpfd || c[1].Image != agent || c[2].Image != operator.DefaultCSIRegistrarImage {
				return fmt.Errorf("containers %v", c)
			}
			return nil
		}
	}

	// Created from the defaults, owned by the ConfigMap, with the API
	// server's defaults filled in.
	waitDaemonSet(images("bpfd:1", "agent:1"))
	if ref := metav1.GetControllerOf(ds); ref == nil || ref.Kind != "ConfigMap" || ref.Name != cm.Name {
		t.Errorf("DaemonSet controller %+v, want the ConfigMap", ref)
	}
	if !slices.Contains(ds.Spec.Template.Spec.Containers[0].Args, "--registry-auth-file="+operator.RegistryAuthFile) {
		t.Errorf("bpfd args %v lack the registry credentials", ds.Spec.Template.Spec.Containers[0].Args)
	}

	// Nothing to change: no write, though the DaemonSet's spec now holds
	// defaults the operator never set.
	time.Sleep(300 * time.Millisecond)
	writes.Reset()
	touchConfigMap := func(edit func(*corev1.ConfigMap)) {
		t.Helper()
		k8stest.Eventually(t, timeout, func() error {
			if err := testEnv.Client.Get(ctx, client.ObjectKeyFromObject(cm), cm); err != nil {
				return err
			}
			edit(cm)
			return testEnv.Client.Update(ctx, cm)
		})
	}
	touchConfigMap(func(cm *corev1.ConfigMap) { cm.Annotations = map[string]string{"touched": "1"} })
	time.Sleep(500 * time.Millisecond)
	if w := writes.Writes(); len(w) != 0 {
		t.Errorf("wrote %v with nothing to change", w)
	}

	// A new image.
	touchConfigMap(func(cm *corev1.ConfigMap) { cm.Data[operator.KeyBpfdImage] = "bpfd:2" })
	waitDaemonSet(images("bpfd:2", "agent:1"))

	// Someone edits the operator's fields: undone.
	k8stest.Eventually(t, timeout, func() error {
		if err := testEnv.Client.Get(ctx, key, ds); err != nil {
			return err
		}
		ds.Spec.Template.Spec.Containers[1].Image = "agent:evil"
		return testEnv.Client.Update(ctx, ds)
	})
	waitDaemonSet(images("bpfd:2", "agent:1"))

	// An invalid ConfigMap leaves the DaemonSet alone.
	time.Sleep(300 * time.Millisecond)
	writes.Reset()
	touchConfigMap(func(cm *corev1.ConfigMap) {
		cm.Data[operator.KeyBpfdImage] = "bpfd:3"
		cm.Data["bpfd.agent.imag"] = "typo"
	})
	time.Sleep(500 * time.Millisecond)
	if w := writes.Writes(); len(w) != 0 {
		t.Errorf("wrote %v from an invalid ConfigMap", w)
	}
	waitDaemonSet(images("bpfd:2", "agent:1"))
}
