package k8s_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestKustomizations builds config/default and config/samples and checks
// what they hold.
func TestKustomizations(t *testing.T) {
	var got []string
	for _, o := range kustomize(t, "default") {
		got = append(got, o.GetKind()+"/"+o.GetName())
		if ns := o.GetNamespace(); ns != "" && ns != namespace {
			t.Errorf("%s %s in namespace %s, want %s", o.GetKind(), o.GetName(), ns, namespace)
		}
	}
	slices.Sort(got)
	want := []string{
		"CSIDriver/csi.bpfd.io",
		"ClusterRole/bpfd-agent",
		"ClusterRole/bpfd-bpfprogram-viewer",
		"ClusterRole/bpfd-bpfprogramconfig-editor",
		"ClusterRole/bpfd-operator",
		"ClusterRole/bpfd-tenant-editor",
		"ClusterRole/bpfd-tenant-viewer",
		"ClusterRoleBinding/bpfd-agent",
		"ClusterRoleBinding/bpfd-operator",
		"ConfigMap/bpfd-config",
		"ConfigMap/bpfd-trust-policy",
		"CustomResourceDefinition/bpfnodes.bpfd.io",
		"CustomResourceDefinition/bpfprogramconfigs.bpfd.io",
		"CustomResourceDefinition/bpfprograms.bpfd.io",
		"CustomResourceDefinition/bpftenantgrants.bpfd.io",
		"CustomResourceDefinition/bpftenantprogramconfigs.bpfd.io",
		"CustomResourceDefinition/bpftenantprograms.bpfd.io",
		"Deployment/bpfd-operator",
		"Namespace/bpfd",
		"Role/bpfd-operator",
		"RoleBinding/bpfd-operator",
		"ServiceAccount/bpfd-agent",
		"ServiceAccount/bpfd-operator",
		"ValidatingAdmissionPolicy/bpfd-agent-own-events",
		"ValidatingAdmissionPolicy/bpfd-agent-own-node",
		"ValidatingAdmissionPolicy/bpfd-tenant-grants",
		"ValidatingAdmissionPolicyBinding/bpfd-agent-own-events",
		"ValidatingAdmissionPolicyBinding/bpfd-agent-own-node",
		"ValidatingAdmissionPolicyBinding/bpfd-tenant-grants",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config/default (-want +got):\n%s", diff)
	}
	// config/openshift: config/default and the SCCs with who may use them.
	var extra []string
	for _, o := range kustomize(t, "openshift") {
		if id := o.GetKind() + "/" + o.GetName(); !slices.Contains(want, id) {
			extra = append(extra, id)
		}
	}
	slices.Sort(extra)
	if diff := cmp.Diff([]string{
		"ClusterRole/bpfd-restricted-scc",
		"Role/bpfd-node-scc",
		"RoleBinding/bpfd-node-scc",
		"SecurityContextConstraints/bpfd-node",
		"SecurityContextConstraints/bpfd-restricted",
	}, extra); diff != "" {
		t.Errorf("config/openshift beyond config/default (-want +got):\n%s", diff)
	}
	if n := len(kustomize(t, "samples")); n != 13 {
		t.Errorf("config/samples holds %d objects, want one per program type (13)", n)
	}
}
