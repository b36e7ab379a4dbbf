package agent

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

// lastWrites remembers, per report (BpfProgram or BpfTenantProgram, by
// uid), the status this agent last wrote to it and the resourceVersions it
// wrote over and produced. A reconcile that runs before the cache holds the
// write (the cache still has the version written over) judges against what
// was written: it neither writes the same status again nor conflicts by
// writing over the version the cache holds.
type lastWrites struct {
	mu sync.Mutex
	m  map[types.UID]lastWrite
}

type lastWrite struct {
	over, now string
	status    v1alpha1.BpfProgramStatus
}

// current returns the status o has as far as this agent knows, and the
// resourceVersion a status update of it must name: the last write's when
// the cache has not caught up with it, o's own otherwise.
func (l *lastWrites) current(o metav1.Object, cached v1alpha1.BpfProgramStatus) (v1alpha1.BpfProgramStatus, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.m[o.GetUID()]
	switch {
	case !ok:
	case o.GetResourceVersion() == w.over:
		return w.status, w.now
	default: // the cache has the write, or a later version
		delete(l.m, o.GetUID())
	}
	return cached, o.GetResourceVersion()
}

// wrote records that status was written over resourceVersion over, making
// written (as the API server returned it).
func (l *lastWrites) wrote(written metav1.Object, over string, status v1alpha1.BpfProgramStatus) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[types.UID]lastWrite{}
	}
	l.m[written.GetUID()] = lastWrite{over: over, now: written.GetResourceVersion(), status: *status.DeepCopy()}
}

// forget drops what is remembered of a report that is deleted.
func (l *lastWrites) forget(uid types.UID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, uid)
}
