package operator

import (
	"slices"
	"strings"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

// finalizers returns the finalizers cfg should carry: those of others as they
// are, and one per node that may hold its programs. nodes maps every existing
// node's name to whether cfg selects it; reporting lists the nodes with a
// BpfProgram of cfg. While cfg is being deleted only existing node
// finalizers remain (none may be added then), each until that node's agent
// unloaded and deleted its BpfProgram or the node is gone.
func finalizers(cfg *v1alpha1.BpfProgramConfig, nodes map[string]bool, reporting []string) []string {
	return nodeFinalizers(cfg.Finalizers, !cfg.DeletionTimestamp.IsZero(), nodes, reporting)
}

// nodeFinalizers is finalizers for a config (a BpfProgramConfig or a
// BpfTenantProgramConfig) carrying current, being deleted or not.
func nodeFinalizers(current []string, deleting bool, nodes map[string]bool, reporting []string) []string {
	want := map[string]bool{}
	for _, n := range reporting {
		if _, exists := nodes[n]; exists {
			want[v1alpha1.NodeFinalizer(n)] = true
		}
	}
	if !deleting {
		for n, selected := range nodes {
			if selected {
				want[v1alpha1.NodeFinalizer(n)] = true
			}
		}
	}
	var out, added []string
	for _, f := range current {
		if !strings.HasPrefix(f, v1alpha1.NodeFinalizerPrefix) || want[f] {
			out = append(out, f)
			delete(want, f)
		}
	}
	if !deleting {
		for f := range want {
			added = append(added, f)
		}
		slices.Sort(added)
	}
	return append(out, added...)
}
