package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BpfTenantProgram is one node's report on one BpfTenantProgramConfig, in
// the config's namespace: what its bpfd loaded for the selected pods on the
// node, from which digest, admitted by which signer and trust-policy rule,
// with each program's pod. Only that node's bpfd-agent creates and writes
// it; it is owned by the config.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=btp,categories=bpfd
// +kubebuilder:subresource:status
// +kubebuilder:selectablefield:JSONPath=`.spec.nodeName`
// +kubebuilder:selectablefield:JSONPath=`.spec.configName`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.nodeName`
// +kubebuilder:printcolumn:name="Config",type=string,JSONPath=`.spec.configName`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Digest",type=string,JSONPath=`.status.digest`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BpfTenantProgram struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec BpfProgramSpec `json:"spec"`
	// +optional
	Status BpfProgramStatus `json:"status,omitempty"`
}

// BpfTenantProgramList is a list of BpfTenantPrograms.
//
// +kubebuilder:object:root=true
type BpfTenantProgramList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BpfTenantProgram `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BpfTenantProgram{}, &BpfTenantProgramList{})
}
