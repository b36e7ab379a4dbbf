package k8stest

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CreateNode creates a Node object, deleted when the test ends. No kubelet
// runs behind it: to bpfd's controllers a node is its object and labels.
func (e *Env) CreateNode(tb testing.TB, name string, labels map[string]string) *corev1.Node {
	tb.Helper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := e.Client.Create(context.Background(), node); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.Client.Delete(context.Background(), node) })
	return node
}

// WaitGone waits until obj no longer exists.
func (e *Env) WaitGone(tb testing.TB, timeout time.Duration, obj client.Object) {
	tb.Helper()
	Eventually(tb, timeout, func() error {
		err := e.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("%T %s still exists (get: %v)", obj, obj.GetName(), err)
	})
}
