package k8stest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// WriteCounter is a client.Client that records every write request it sends
// (create, update, patch, apply, delete, and those on subresources such as
// status), so tests can prove a controller does not write when nothing
// changed. Reads pass through; List calls are counted.
type WriteCounter struct {
	client.Client
	mu     sync.Mutex
	writes []string
	lists  int
}

var _ client.Client = (*WriteCounter)(nil)

// CountWrites wraps c.
func CountWrites(c client.Client) *WriteCounter { return &WriteCounter{Client: c} }

// Writes returns the writes so far, each as "verb Kind/name".
func (w *WriteCounter) Writes() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.writes)
}

// Lists returns how many List calls went through, which tells how often a
// controller that lists on every reconcile ran.
func (w *WriteCounter) Lists() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lists
}

// Reset forgets the writes and lists so far.
func (w *WriteCounter) Reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes, w.lists = nil, 0
}

func (w *WriteCounter) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	w.mu.Lock()
	w.lists++
	w.mu.Unlock()
	return w.Client.List(ctx, list, opts...)
}

func (w *WriteCounter) record(verb string, obj runtime.Object) {
	name := ""
	if o, ok := obj.(client.Object); ok {
		name = o.GetName()
	}
	kind := fmt.Sprintf("%T", obj)
	if gvk, err := w.Client.GroupVersionKindFor(obj); err == nil {
		kind = gvk.Kind
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, fmt.Sprintf("%s %s/%s", verb, kind, name))
}

func (w *WriteCounter) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	w.record("create", obj)
	return w.Client.Create(ctx, obj, opts...)
}

func (w *WriteCounter) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	w.record("update", obj)
	return w.Client.Update(ctx, obj, opts...)
}

func (w *WriteCounter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	w.record("patch", obj)
	return w.Client.Patch(ctx, obj, patch, opts...)
}

func (w *WriteCounter) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	w.mu.Lock()
	w.writes = append(w.writes, fmt.Sprintf("apply %T", obj))
	w.mu.Unlock()
	return w.Client.Apply(ctx, obj, opts...)
}

func (w *WriteCounter) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	w.record("delete", obj)
	return w.Client.Delete(ctx, obj, opts...)
}

func (w *WriteCounter) DeleteAllOf(ctx context.Context, obj client.Object, opts ...client.DeleteAllOfOption) error {
	w.record("deleteallof", obj)
	return w.Client.DeleteAllOf(ctx, obj, opts...)
}

func (w *WriteCounter) Status() client.SubResourceWriter {
	return w.SubResource("status")
}

func (w *WriteCounter) SubResource(name string) client.SubResourceClient {
	return &subResourceCounter{SubResourceClient: w.Client.SubResource(name), w: w, name: name}
}

type subResourceCounter struct {
	client.SubResourceClient
	w    *WriteCounter
	name string
}

func (s *subResourceCounter) Create(ctx context.Context, obj client.Object, sub client.Object, opts ...client.SubResourceCreateOption) error {
	s.w.record("create "+s.name, obj)
	return s.SubResourceClient.Create(ctx, obj, sub, opts...)
}

func (s *subResourceCounter) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	s.w.record("update "+s.name, obj)
	return s.SubResourceClient.Update(ctx, obj, opts...)
}

func (s *subResourceCounter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	s.w.record("patch "+s.name, obj)
	return s.SubResourceClient.Patch(ctx, obj, patch, opts...)
}

func (s *subResourceCounter) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
	s.w.mu.Lock()
	s.w.writes = append(s.w.writes, fmt.Sprintf("apply %s %T", s.name, obj))
	s.w.mu.Unlock()
	return s.SubResourceClient.Apply(ctx, obj, opts...)
}
