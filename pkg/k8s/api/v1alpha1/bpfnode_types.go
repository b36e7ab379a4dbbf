package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BpfNode is one node's BPF inventory: how many programs its bpfd manages
// and how many other BPF programs run there, and, bounded, those others
// with the processes holding them, resolved to their pods where the node
// runs them. Named after the node; only that node's bpfd-agent writes it,
// only when something changed and at most once per its report period.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=bn,categories=bpfd
// +kubebuilder:subresource:status
// +kubebuilder:selectablefield:JSONPath=`.spec.nodeName`
// +kubebuilder:printcolumn:name="Managed",type=integer,JSONPath=`.status.managedPrograms`
// +kubebuilder:printcolumn:name="Unmanaged",type=integer,JSONPath=`.status.unmanagedPrograms`
// +kubebuilder:printcolumn:name="Changed",type=date,JSONPath=`.status.lastChange`
// +kubebuilder:printcolumn:name="Holders",type=string,JSONPath=`.status.holderSource`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name == self.spec.nodeName",message="a BpfNode is named after its node"
type BpfNode struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec BpfNodeSpec `json:"spec"`
	// +optional
	Status BpfNodeStatus `json:"status,omitempty"`
}

// BpfNodeSpec names the node.
type BpfNodeSpec struct {
	// nodeName names the node; the BpfNode has its name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="nodeName is immutable"
	NodeName string `json:"nodeName"`
}

// MaxUnmanagedPrograms bounds BpfNodeStatus.Unmanaged.
const MaxUnmanagedPrograms = 64

// BpfNodeStatus is what the node's bpfd found.
type BpfNodeStatus struct {
	// managedPrograms counts the programs the node's bpfd manages.
	// +optional
	ManagedPrograms int32 `json:"managedPrograms"`
	// unmanagedPrograms counts the other BPF programs on the node (not the
	// dispatchers bpfd built to run its own).
	// +optional
	UnmanagedPrograms int32 `json:"unmanagedPrograms"`
	// lastChange is when the agent last found the node's programs changed.
	// +optional
	LastChange *metav1.Time `json:"lastChange,omitempty"`
	// holderSource says how bpfd found the processes holding programs:
	// iterator (a BPF iterator over the tasks' files) or procfs.
	// +optional
	// +kubebuilder:validation:MaxLength=16
	HolderSource string `json:"holderSource,omitempty"`

	// unmanaged are programs bpfd did not load, the newest (highest
	// kernel id) first, at most 64.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Unmanaged []UnmanagedProgram `json:"unmanaged,omitempty"`
	// omittedPrograms counts unmanaged programs on the node not listed in
	// unmanaged.
	// +optional
	OmittedPrograms int32 `json:"omittedPrograms,omitempty"`

	// conditions: Ready, False with reason DaemonUnavailable when the
	// node's bpfd could not be asked.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// UnmanagedProgram is a BPF program on the node that bpfd did not load.
type UnmanagedProgram struct {
	// kernelID is the kernel's program id (bpftool prog show id ID).
	// +required
	KernelID int64 `json:"kernelID"`
	// name is the kernel's (possibly truncated) name of the program.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Name string `json:"name,omitempty"`
	// type is the kernel's program type, e.g. XDP, SchedCLS, Kprobe.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Type string `json:"type,omitempty"`
	// tag is the hash of its instructions.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Tag string `json:"tag,omitempty"`
	// loadedAt is when the kernel loaded it.
	// +optional
	LoadedAt *metav1.Time `json:"loadedAt,omitempty"`
	// loaderUID is the uid of the process that loaded it.
	// +optional
	LoaderUID *int64 `json:"loaderUID,omitempty"`
	// attachedTo says where its links attach, e.g. "tcx eth0 ingress",
	// "cgroup /kubepods.slice CGroupInetEgress".
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=512
	AttachedTo []string `json:"attachedTo,omitempty"`
	// pins are its paths under the node's bpffs mounts.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=1024
	Pins []string `json:"pins,omitempty"`
	// holders are the processes holding a descriptor of it.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	Holders []ProgramHolder `json:"holders,omitempty"`
}

// ProgramHolder is a process holding a BPF program, with its pod when its
// cgroup names one.
type ProgramHolder struct {
	// pid is the process's id on the node.
	// +required
	PID int32 `json:"pid"`
	// command is the process's name (comm).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Command string `json:"command,omitempty"`
	// podUID is the uid of the pod whose cgroup it is in.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	PodUID string `json:"podUID,omitempty"`
	// podNamespace and podName name that pod when it runs on the node.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	PodNamespace string `json:"podNamespace,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxLength=253
	PodName string `json:"podName,omitempty"`
	// containerID is the container runtime's id of its container.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	ContainerID string `json:"containerID,omitempty"`
}

// BpfNodeList is a list of BpfNodes.
//
// +kubebuilder:object:root=true
type BpfNodeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BpfNode `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BpfNode{}, &BpfNodeList{})
}
