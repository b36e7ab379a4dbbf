package agent

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

func TestConfigChanged(t *testing.T) {
	mine, other := v1alpha1.NodeFinalizer("worker-1"), v1alpha1.NodeFinalizer("worker-2")
	now := metav1.Now()
	config := func(generation int64, deleted *metav1.Time, finalizers ...string) *v1alpha1.BpfProgramConfig {
		return &v1alpha1.BpfProgramConfig{ObjectMeta: metav1.ObjectMeta{
			Name: "c", Generation: generation, DeletionTimestamp: deleted, Finalizers: finalizers,
		}}
	}
	tests := []struct {
		name     string
		old, new *v1alpha1.BpfProgramConfig
		want     bool
	}{
		{"status only", config(1, nil, mine), config(1, nil, mine), false},
		{"spec", config(1, nil, mine), config(2, nil, mine), true},
		{"deleted", config(1, nil, mine), config(1, &now, mine), true},
		{"this node's finalizer added", config(1, nil, other), config(1, nil, other, mine), true},
		{"this node's finalizer removed", config(1, &now, mine, other), config(1, &now, other), true},
		{"another node's finalizer added", config(1, nil, mine), config(1, nil, mine, other), false},
		{"another node's finalizer removed", config(1, &now, mine, other), config(1, &now, mine), false},
	}
	p := configChanged{finalizer: mine}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Update(event.UpdateEvent{ObjectOld: tt.old, ObjectNew: tt.new}); got != tt.want {
				t.Errorf("Update = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReportChanged(t *testing.T) {
	now := metav1.Now()
	report := func(edit func(*v1alpha1.BpfProgram)) *v1alpha1.BpfProgram {
		bp := &v1alpha1.BpfProgram{ObjectMeta: metav1.ObjectMeta{
			Name: "c-worker-1", Generation: 1, Labels: map[string]string{"a": "b"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "BpfProgramConfig", Name: "c", UID: "u1"}},
		}}
		if edit != nil {
			edit(bp)
		}
		return bp
	}
	tests := []struct {
		name string
		new  *v1alpha1.BpfProgram
		want bool
	}{
		{"status only", report(func(bp *v1alpha1.BpfProgram) { bp.Status.Image = "x" }), false},
		{"spec", report(func(bp *v1alpha1.BpfProgram) { bp.Generation = 2 }), true},
		{"deleted", report(func(bp *v1alpha1.BpfProgram) { bp.DeletionTimestamp = &now }), true},
		{"labels", report(func(bp *v1alpha1.BpfProgram) { bp.Labels["a"] = "c" }), true},
		{"finalizers", report(func(bp *v1alpha1.BpfProgram) { bp.Finalizers = []string{"f"} }), true},
		{"controller", report(func(bp *v1alpha1.BpfProgram) { bp.OwnerReferences[0].UID = "u2" }), true},
	}
	if !(reportChanged{}).Create(event.CreateEvent{Object: report(nil)}) {
		t.Error("Create = false, want true")
	}
	if !(reportChanged{}).Delete(event.DeleteEvent{Object: report(nil)}) {
		t.Error("Delete = false, want true")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (reportChanged{}).Update(event.UpdateEvent{ObjectOld: report(nil), ObjectNew: tt.new}); got != tt.want {
				t.Errorf("Update = %v, want %v", got, tt.want)
			}
		})
	}
}
