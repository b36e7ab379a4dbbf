package operator

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

// maxFailures is how many failed nodes a config's status lists.
const maxFailures = 5

// aggregate returns cfg's status summing up the BpfPrograms of the nodes:
// selected maps each existing node's name to whether cfg selects it; reports
// maps node names to their BpfProgram of cfg. Conditions keep their
// transition times when their status did not change.
func aggregate(cfg *v1alpha1.BpfProgramConfig, selected map[string]bool, reports map[string]*v1alpha1.BpfProgram) v1alpha1.BpfProgramConfigStatus {
	statuses := make(map[string]*v1alpha1.BpfProgramStatus, len(reports))
	for node, bp := range reports {
		statuses[node] = &bp.Status
	}
	return aggregateStatus(cfg.Generation, cfg.Status, selected, statuses)
}

// aggregateStatus returns the status of a config (a BpfProgramConfig or a
// BpfTenantProgramConfig) of generation generation whose status is old,
// summing up its nodes' reports: selected maps each existing node's name to
// whether the config selects it; reports maps node names to the status of
// their report.
func aggregateStatus(generation int64, old v1alpha1.BpfProgramConfigStatus, selected map[string]bool, reports map[string]*v1alpha1.BpfProgramStatus) v1alpha1.BpfProgramConfigStatus {
	st := v1alpha1.BpfProgramConfigStatus{
		ObservedGeneration: generation,
		Conditions:         slices.Clone(old.Conditions),
	}
	var pending, unloading int32
	var failures []v1alpha1.NodeFailure
	for _, node := range sortedKeys(selected) {
		bp := reports[node]
		if !selected[node] {
			if bp != nil {
				unloading++
			}
			continue
		}
		st.NodesSelected++
		var ready *metav1.Condition
		if bp != nil && bp.ObservedConfigGeneration == generation {
			ready = meta.FindStatusCondition(bp.Conditions, v1alpha1.ConditionReady)
		}
		switch {
		case ready == nil:
			pending++
		case ready.Status == metav1.ConditionTrue:
			st.NodesLoaded++
		case v1alpha1.FailureReason(ready.Reason):
			st.NodesFailed++
			failures = append(failures, v1alpha1.NodeFailure{NodeName: node, Reason: ready.Reason, Message: ready.Message})
		default:
			pending++
		}
	}
	if len(failures) > maxFailures {
		failures = failures[:maxFailures]
	}
	st.Failures = failures

	set := func(t string, ok bool, reason, msg string) {
		status := metav1.ConditionFalse
		if ok {
			status = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: t, Status: status, Reason: reason, Message: msg, ObservedGeneration: generation,
		})
	}
	loadedMsg := fmt.Sprintf("%d of %d selected nodes loaded the programs", st.NodesLoaded, st.NodesSelected)
	switch {
	case st.NodesSelected == 0:
		set(v1alpha1.ConditionReady, true, v1alpha1.ReasonNoNodesSelected, "no node matches the nodeSelector")
	case st.NodesLoaded == st.NodesSelected:
		set(v1alpha1.ConditionReady, true, v1alpha1.ReasonAllNodesLoaded, loadedMsg)
	case st.NodesFailed > 0:
		set(v1alpha1.ConditionReady, false, v1alpha1.ReasonNodesFailed, loadedMsg)
	default:
		set(v1alpha1.ConditionReady, false, v1alpha1.ReasonNodesPending, loadedMsg)
	}
	switch {
	case pending > 0:
		set(v1alpha1.ConditionProgressing, true, v1alpha1.ReasonNodesPending, fmt.Sprintf("%d selected nodes have not reported on generation %d yet", pending, generation))
	case unloading > 0:
		set(v1alpha1.ConditionProgressing, true, v1alpha1.ReasonNodesUnloading, fmt.Sprintf("%d nodes no longer selected are unloading the programs", unloading))
	default:
		set(v1alpha1.ConditionProgressing, false, v1alpha1.ReasonConverged, "every node reported on the current generation")
	}
	if st.NodesFailed > 0 {
		first := failures[0]
		set(v1alpha1.ConditionDegraded, true, v1alpha1.ReasonNodesFailed, fmt.Sprintf("%d of %d selected nodes failed; %s: %s: %s",
			st.NodesFailed, st.NodesSelected, first.NodeName, first.Reason, first.Message))
	} else {
		set(v1alpha1.ConditionDegraded, false, v1alpha1.ReasonNoFailures, "no selected node failed")
	}
	return st
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
