package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BpfProgramConfig is the cluster-wide intent to run programs of one bytecode
// artifact on the nodes its nodeSelector matches. Each selected node's agent
// asks its bpfd to load them and reports the result in a BpfProgram; the
// operator sums those reports up in the status.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=bpc,categories=bpfd
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Selected",type=integer,JSONPath=`.status.nodesSelected`
// +kubebuilder:printcolumn:name="Loaded",type=integer,JSONPath=`.status.nodesLoaded`
// +kubebuilder:printcolumn:name="Failed",type=integer,JSONPath=`.status.nodesFailed`
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.bytecode.image`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BpfProgramConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec BpfProgramConfigSpec `json:"spec"`
	// +optional
	Status BpfProgramConfigStatus `json:"status,omitempty"`
}

// BpfProgramConfigSpec says what to load and where.
type BpfProgramConfigSpec struct {
	// bytecode names the artifact the programs come from.
	// +required
	Bytecode BytecodeImage `json:"bytecode"`

	// programs lists the programs to load from the artifact and where to
	// attach each. All of them load together on a node, sharing their maps,
	// or none does.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Programs []Program `json:"programs"`

	// globalData overrides global variables declared by the artifact, by
	// name; each value is base64 and must be as long as the variable (at most
	// 4096 bytes).
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.size() <= 64 && k.matches('^[A-Za-z_][A-Za-z0-9_]*$'))",message="globalData keys must be C identifiers of at most 64 characters"
	// +kubebuilder:validation:XValidation:rule="self.all(k, self[k].size() <= 4096)",message="globalData values must be at most 4096 bytes"
	GlobalData map[string][]byte `json:"globalData,omitempty"`

	// mapOwnerSelector selects another BpfProgramConfig, by its labels, whose
	// programs on the same node own the maps these programs use instead of
	// creating their own. It must match exactly one config, which must be
	// loaded on the node first.
	// +optional
	MapOwnerSelector *LabelSelector `json:"mapOwnerSelector,omitempty"`

	// mapReaderNamespaces lists the namespaces whose pods may mount this
	// config's maps, on each node that runs its programs, through the CSI
	// driver csi.bpfd.io (a CSI ephemeral volume whose volumeAttributes
	// name this config). Empty: no pod may. A pod gets the maps read-only
	// unless its volume asks for write access. A change applies to volumes
	// mounted afterwards; the programs stay loaded and their maps keep
	// their contents.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	MapReaderNamespaces []string `json:"mapReaderNamespaces,omitempty"`

	// nodeSelector selects the nodes, by their labels, on which the programs
	// run; {} selects every node.
	// +required
	NodeSelector LabelSelector `json:"nodeSelector"`
}

// BytecodeImage names an OCI artifact of BPF bytecode. The node's bpfd pulls
// and verifies it against the node's trust policy; nothing in the cluster can
// bypass that policy.
//
// +kubebuilder:validation:XValidation:rule="(has(self.allowTagUnsafe) && self.allowTagUnsafe) || self.image.matches('@sha256:[a-f0-9]{64}$')",message="image must be pinned by digest (…@sha256:<64 hex digits>); set allowTagUnsafe: true to use a tag, which the nodes' trust policy may still refuse"
type BytecodeImage struct {
	// image is the artifact's reference: host[:port]/repository@sha256:<hex>
	// (a tag may precede the digest), or oci:PATH@sha256:<hex> for an OCI
	// layout on the node. It must carry a digest unless allowTagUnsafe is set.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Image string `json:"image"`

	// allowTagUnsafe accepts an image without a digest. Every node then
	// resolves the tag on its own, so nodes may load different bytecode; the
	// nodes' trust policy may still refuse unpinned references.
	// +optional
	AllowTagUnsafe bool `json:"allowTagUnsafe,omitempty"`

	// pullPolicy says when a node fetches an image it already has.
	// +optional
	// +kubebuilder:default=IfNotPresent
	PullPolicy PullPolicy `json:"pullPolicy,omitempty"`
}

// PullPolicy says when a node's bpfd fetches an image it already has.
// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
type PullPolicy string

// The pull policies.
const (
	PullAlways       PullPolicy = "Always"
	PullIfNotPresent PullPolicy = "IfNotPresent"
	PullNever        PullPolicy = "Never"
)

// BpfProgramConfigStatus sums up the nodes' BpfPrograms.
type BpfProgramConfigStatus struct {
	// observedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready (every selected node loaded the programs),
	// Progressing (some node has not reported on the current generation, or
	// is unloading) and Degraded (some node failed).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// nodesSelected counts the nodes the nodeSelector matches.
	// +optional
	NodesSelected int32 `json:"nodesSelected"`
	// nodesLoaded counts the selected nodes that loaded the current
	// generation.
	// +optional
	NodesLoaded int32 `json:"nodesLoaded"`
	// nodesFailed counts the selected nodes that failed to load it.
	// +optional
	NodesFailed int32 `json:"nodesFailed"`

	// failures are the first failed nodes, by name, with their reasons.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=5
	Failures []NodeFailure `json:"failures,omitempty"`
}

// NodeFailure is why one node failed to load a config's programs.
type NodeFailure struct {
	// nodeName names the node.
	// +required
	// +kubebuilder:validation:MaxLength=253
	NodeName string `json:"nodeName"`
	// reason is the node's BpfProgram Ready reason, e.g. PolicyDenied.
	// +required
	// +kubebuilder:validation:MaxLength=64
	Reason string `json:"reason"`
	// message is the node's explanation.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// BpfProgramConfigList is a list of BpfProgramConfigs.
//
// +kubebuilder:object:root=true
type BpfProgramConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BpfProgramConfig `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BpfProgramConfig{}, &BpfProgramConfigList{})
}
