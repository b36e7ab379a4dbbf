package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BpfProgram is one node's report on one BpfProgramConfig: what its bpfd
// loaded, from which digest, admitted by which signer and trust-policy rule,
// with the kernel's ids and bpffs pins of each program. Only that node's
// bpfd-agent creates and writes it; it is owned by the config.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=bp,categories=bpfd
// +kubebuilder:subresource:status
// +kubebuilder:selectablefield:JSONPath=`.spec.nodeName`
// +kubebuilder:selectablefield:JSONPath=`.spec.configName`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.nodeName`
// +kubebuilder:printcolumn:name="Config",type=string,JSONPath=`.spec.configName`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Digest",type=string,JSONPath=`.status.digest`,priority=1
// +kubebuilder:printcolumn:name="Signer",type=string,JSONPath=`.status.signer`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BpfProgram struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec BpfProgramSpec `json:"spec"`
	// +optional
	Status BpfProgramStatus `json:"status,omitempty"`
}

// BpfProgramSpec names the node and the config a BpfProgram reports on.
type BpfProgramSpec struct {
	// nodeName names the node.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="nodeName is immutable"
	NodeName string `json:"nodeName"`

	// configName names the BpfProgramConfig.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="configName is immutable"
	ConfigName string `json:"configName"`
}

// BpfProgramStatus is what the node's bpfd did with the config.
type BpfProgramStatus struct {
	// observedConfigGeneration is the config generation the node acted on.
	// +optional
	ObservedConfigGeneration int64 `json:"observedConfigGeneration,omitempty"`

	// conditions: Ready, with a machine-readable reason (Loaded,
	// PolicyDenied, VerifierRejected, AttachFailed, ImagePullFailed,
	// Unloading, ...).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// image is the reference the node loaded from.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Image string `json:"image,omitempty"`
	// digest is what the reference resolved to, and what was verified and
	// loaded.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Digest string `json:"digest,omitempty"`
	// signer is the key fingerprint or certificate identity that satisfied
	// the node's trust policy; empty when the policy allowed unsigned
	// bytecode.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Signer string `json:"signer,omitempty"`
	// rule names the trust-policy rule that admitted the artifact.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Rule string `json:"rule,omitempty"`
	// policyFingerprint identifies the node's trust-policy file that decided.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	PolicyFingerprint string `json:"policyFingerprint,omitempty"`

	// programs are the loaded programs, one per program and attach point.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	Programs []LoadedProgram `json:"programs,omitempty"`
}

// LoadedProgram is one program bpfd loaded and attached on the node.
type LoadedProgram struct {
	// name is the program's function name in the artifact.
	// +required
	// +kubebuilder:validation:MaxLength=128
	Name string `json:"name"`
	// +required
	Type ProgramType `json:"type"`
	// attachPoint says where it is attached, e.g. "eth0 ingress" or
	// "syscalls/sys_enter_openat".
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	AttachPoint string `json:"attachPoint,omitempty"`
	// id is bpfd's id of the program on the node (bpfctl get ID).
	// +required
	ID int64 `json:"id"`
	// kernelID is the kernel's program id (bpftool prog show id ID).
	// +optional
	KernelID int64 `json:"kernelID,omitempty"`
	// linkIDs are the kernel's ids of the program's links.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	LinkIDs []int64 `json:"linkIDs,omitempty"`
	// pinPath is the program's directory in bpfd's bpffs.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	PinPath string `json:"pinPath,omitempty"`
	// pod names the pod, in a BpfTenantProgram, in whose network
	// namespace or container the program is attached; empty for a program
	// attached on the node.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Pod string `json:"pod,omitempty"`
	// maps are the program's maps.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Maps []LoadedMap `json:"maps,omitempty"`
}

// LoadedMap is a map of a loaded program.
type LoadedMap struct {
	// +required
	// +kubebuilder:validation:MaxLength=128
	Name string `json:"name"`
	// id is the kernel's map id.
	// +optional
	ID int64 `json:"id,omitempty"`
	// pinPath is where bpfd pinned the map.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	PinPath string `json:"pinPath,omitempty"`
}

// BpfProgramList is a list of BpfPrograms.
//
// +kubebuilder:object:root=true
type BpfProgramList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BpfProgram `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BpfProgram{}, &BpfProgramList{})
}
