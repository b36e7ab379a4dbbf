package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TenantGrantName is the name of the cluster's one BpfTenantGrant, which
// the admission policy bpfd-tenant-grants takes as its parameter and the
// agents read.
const TenantGrantName = "cluster"

// TenantDefaultTypes are the program types every namespace may use in a
// BpfTenantProgramConfig without a grant: those that attach inside its own
// pods.
var TenantDefaultTypes = []ProgramType{ProgramTypeXDP, ProgramTypeTC, ProgramTypeTCX, ProgramTypeUprobe, ProgramTypeUretprobe}

// BpfTenantGrant lists the program types each namespace may use in its
// BpfTenantProgramConfigs beyond those that attach inside its own pods
// (xdp, tc, tcx, uprobe, uretprobe): tracepoints, kprobes, fentry, cgroup
// and raw tracepoint programs observe or act on the whole node. There is
// one, named cluster: the ValidatingAdmissionPolicy bpfd-tenant-grants
// takes it as its parameter (an admission policy reads one parameter
// object, not a list), and every node's agent passes its grants to bpfd,
// which enforces them again. Only cluster administrators should write it.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=btg,categories=bpfd
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name == 'cluster'",message="the cluster's BpfTenantGrant is named cluster; there is no other"
type BpfTenantGrant struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec BpfTenantGrantSpec `json:"spec"`
}

// BpfTenantGrantSpec lists the namespaces with grants.
type BpfTenantGrantSpec struct {
	// namespaces lists each namespace with grants, at most once.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=256
	Namespaces []NamespaceGrant `json:"namespaces,omitempty"`
}

// NamespaceGrant is what one namespace may use beyond its pods.
type NamespaceGrant struct {
	// name is the namespace's.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// programTypes are the program types granted.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	ProgramTypes []ProgramType `json:"programTypes"`
}

// Granted returns the program types g grants to namespace, nil for none.
func (g *BpfTenantGrant) Granted(namespace string) []ProgramType {
	for _, n := range g.Spec.Namespaces {
		if n.Name == namespace {
			return n.ProgramTypes
		}
	}
	return nil
}

// BpfTenantGrantList is a list of BpfTenantGrants.
//
// +kubebuilder:object:root=true
type BpfTenantGrantList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BpfTenantGrant `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BpfTenantGrant{}, &BpfTenantGrantList{})
}
