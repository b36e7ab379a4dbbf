package operator

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

func report(generation int64, status metav1.ConditionStatus, reason, msg string) *v1alpha1.BpfProgram {
	return &v1alpha1.BpfProgram{Status: v1alpha1.BpfProgramStatus{
		ObservedConfigGeneration: generation,
		Conditions:               []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: status, Reason: reason, Message: msg}},
	}}
}

func TestAggregate(t *testing.T) {
	const gen = 3
	loaded := report(gen, metav1.ConditionTrue, v1alpha1.ReasonLoaded, "2 programs loaded")
	denied := report(gen, metav1.ConditionFalse, v1alpha1.ReasonPolicyDenied, "signed by an untrusted key")
	type want struct {
		selected, loaded, failed int32
		failures                 []v1alpha1.NodeFailure
		ready, progressing       string // reasons; Ready/Progressing True for the reasons that mean so
		degraded                 bool
	}
	cases := map[string]struct {
		selected map[string]bool
		reports  map[string]*v1alpha1.BpfProgram
		want     want
	}{
		"no nodes": {
			selected: map[string]bool{"a": false},
			want:     want{ready: v1alpha1.ReasonNoNodesSelected, progressing: v1alpha1.ReasonConverged},
		},
		"all loaded": {
			selected: map[string]bool{"a": true, "b": true, "c": false},
			reports:  map[string]*v1alpha1.BpfProgram{"a": loaded, "b": loaded},
			want:     want{selected: 2, loaded: 2, ready: v1alpha1.ReasonAllNodesLoaded, progressing: v1alpha1.ReasonConverged},
		},
		"one not reported yet": {
			selected: map[string]bool{"a": true, "b": true},
			reports:  map[string]*v1alpha1.BpfProgram{"a": loaded},
			want:     want{selected: 2, loaded: 1, ready: v1alpha1.ReasonNodesPending, progressing: v1alpha1.ReasonNodesPending},
		},
		"one on an older generation": {
			selected: map[string]bool{"a": true, "b": true},
			reports:  map[string]*v1alpha1.BpfProgram{"a": loaded, "b": report(gen-1, metav1.ConditionTrue, v1alpha1.ReasonLoaded, "")},
			want:     want{selected: 2, loaded: 1, ready: v1alpha1.ReasonNodesPending, progressing: v1alpha1.ReasonNodesPending},
		},
		"one pending on its finalizer": {
			selected: map[string]bool{"a": true},
			reports:  map[string]*v1alpha1.BpfProgram{"a": report(gen, metav1.ConditionFalse, v1alpha1.ReasonPending, "")},
			want:     want{selected: 1, ready: v1alpha1.ReasonNodesPending, progressing: v1alpha1.ReasonNodesPending},
		},
		"one denied": {
			selected: map[string]bool{"a": true, "b": true},
			reports:  map[string]*v1alpha1.BpfProgram{"a": loaded, "b": denied},
			want: want{selected: 2, loaded: 1, failed: 1, ready: v1alpha1.ReasonNodesFailed, progressing: v1alpha1.ReasonConverged, degraded: true,
				failures: []v1alpha1.NodeFailure{{NodeName: "b", Reason: v1alpha1.ReasonPolicyDenied, Message: "signed by an untrusted key"}}},
		},
		"an unselected node unloading": {
			selected: map[string]bool{"a": true, "b": false},
			reports:  map[string]*v1alpha1.BpfProgram{"a": loaded, "b": loaded},
			want:     want{selected: 1, loaded: 1, ready: v1alpha1.ReasonAllNodesLoaded, progressing: v1alpha1.ReasonNodesUnloading},
		},
		"first five failures by name": {
			selected: map[string]bool{"n7": true, "n1": true, "n3": true, "n2": true, "n6": true, "n5": true, "n4": true},
			reports: map[string]*v1alpha1.BpfProgram{
				"n1": denied, "n2": denied, "n3": denied, "n4": denied, "n5": denied, "n6": denied, "n7": denied,
			},
			want: want{selected: 7, failed: 7, ready: v1alpha1.ReasonNodesFailed, progressing: v1alpha1.ReasonConverged, degraded: true,
				failures: func() []v1alpha1.NodeFailure {
					var fs []v1alpha1.NodeFailure
					for i := 1; i <= 5; i++ {
						fs = append(fs, v1alpha1.NodeFailure{NodeName: fmt.Sprintf("n%d", i), Reason: v1alpha1.ReasonPolicyDenied, Message: "signed by an untrusted key"})
					}
					return fs
				}()},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := &v1alpha1.BpfProgramConfig{ObjectMeta: metav1.ObjectMeta{Name: "c", Generation: gen}}
			st := aggregate(cfg, tc.selected, tc.reports)
			got := want{selected: st.NodesSelected, loaded: st.NodesLoaded, failed: st.NodesFailed, failures: st.Failures,
				ready:       meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady).Reason,
				progressing: meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionProgressing).Reason,
				degraded:    meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionDegraded),
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("aggregate (-want +got):\n%s", diff)
			}
			readyTrue := tc.want.ready == v1alpha1.ReasonAllNodesLoaded || tc.want.ready == v1alpha1.ReasonNoNodesSelected
			if meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionReady) != readyTrue {
				t.Errorf("Ready %v, want %v", !readyTrue, readyTrue)
			}
			if st.ObservedGeneration != gen {
				t.Errorf("observedGeneration %d, want %d", st.ObservedGeneration, gen)
			}
		})
	}
}

// TestAggregateKeepsTransitionTimes proves an unchanged status aggregates to
// an equal one, so the operator does not write it again.
func TestAggregateKeepsTransitionTimes(t *testing.T) {
	cfg := &v1alpha1.BpfProgramConfig{ObjectMeta: metav1.ObjectMeta{Name: "c", Generation: 1}}
	selected := map[string]bool{"a": true}
	reports := map[string]*v1alpha1.BpfProgram{"a": report(1, metav1.ConditionTrue, v1alpha1.ReasonLoaded, "")}
	cfg.Status = aggregate(cfg, selected, reports)
	for i := range cfg.Status.Conditions {
		cfg.Status.Conditions[i].LastTransitionTime = metav1.NewTime(time.Unix(1e9, 0))
	}
	if diff := cmp.Diff(cfg.Status, aggregate(cfg, selected, reports)); diff != "" {
		t.Errorf("status changed though nothing did (-before +after):\n%s", diff)
	}
}
