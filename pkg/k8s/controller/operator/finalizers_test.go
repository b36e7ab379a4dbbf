package operator

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

func TestFinalizers(t *testing.T) {
	fa, fb, fc := v1alpha1.NodeFinalizer("a"), v1alpha1.NodeFinalizer("b"), v1alpha1.NodeFinalizer("c")
	const other = "example.com/keep"
	now := metav1.Now()
	cases := map[string]struct {
		have      []string
		deleting  bool
		nodes     map[string]bool // existing node -> selected
		reporting []string
		want      []string
	}{
		"selected nodes": {
			nodes: map[string]bool{"a": true, "b": true, "c": false},
			want:  []string{fa, fb},
		},
		"others' finalizers stay first": {
			have:  []string{other},
			nodes: map[string]bool{"b": true, "a": true},
			want:  []string{other, fa, fb},
		},
		"unselected node still reporting keeps its finalizer": {
			have:      []string{fa, fb},
			nodes:     map[string]bool{"a": true, "b": false},
			reporting: []string{"a", "b"},
			want:      []string{fa, fb},
		},
		"unselected node done": {
			have:      []string{fa, fb},
			nodes:     map[string]bool{"a": true, "b": false},
			reporting: []string{"a"},
			want:      []string{fa},
		},
		"vanished node": {
			have:      []string{fa, fb},
			nodes:     map[string]bool{"a": true},
			reporting: []string{"a", "b"},
			want:      []string{fa},
		},
		"deleting: nodes still reporting hold it": {
			have:      []string{other, fa, fb, fc},
			deleting:  true,
			nodes:     map[string]bool{"a": true, "b": true, "c": true},
			reporting: []string{"b"},
			want:      []string{other, fb},
		},
		"deleting: no new finalizers": {
			have:      []string{fa},
			deleting:  true,
			nodes:     map[string]bool{"a": true, "b": true},
			reporting: []string{"a", "b"},
			want:      []string{fa},
		},
		"deleting: vanished node reporting": {
			have:      []string{fa},
			deleting:  true,
			nodes:     map[string]bool{},
			reporting: []string{"a"},
			want:      nil,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := &v1alpha1.BpfProgramConfig{ObjectMeta: metav1.ObjectMeta{Name: "c", Finalizers: tc.have}}
			if tc.deleting {
				cfg.DeletionTimestamp = &now
			}
			got := finalizers(cfg, tc.nodes, tc.reporting)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("finalizers (-want +got):\n%s", diff)
			}
		})
	}
}
