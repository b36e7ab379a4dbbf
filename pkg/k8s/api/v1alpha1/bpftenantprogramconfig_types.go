package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BpfTenantProgramConfig is a namespace's intent to run programs of one
// bytecode artifact for its own pods: the pods of its namespace that
// podSelector matches, on the nodes nodeSelector matches. XDP, TC and TCX
// programs attach to interfaces inside each selected pod's network
// namespace, uprobes and uretprobes to a binary or library inside a
// container of each selected pod, for that container's process. Other
// program types need a grant of the cluster's BpfTenantGrant. Each node's
// agent reports in a BpfTenantProgram beside it; the operator sums those
// reports up in the status.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=btpc,categories=bpfd
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Selected",type=integer,JSONPath=`.status.nodesSelected`
// +kubebuilder:printcolumn:name="Loaded",type=integer,JSONPath=`.status.nodesLoaded`
// +kubebuilder:printcolumn:name="Failed",type=integer,JSONPath=`.status.nodesFailed`
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.bytecode.image`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BpfTenantProgramConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec BpfTenantProgramConfigSpec `json:"spec"`
	// +optional
	Status BpfProgramConfigStatus `json:"status,omitempty"`
}

// BpfTenantProgramConfigSpec says what to load, for which of the
// namespace's pods, and where in them.
type BpfTenantProgramConfigSpec struct {
	// bytecode names the artifact the programs come from. The node's trust
	// policy must admit it for this namespace (rules[].namespaces).
	// +required
	Bytecode BytecodeImage `json:"bytecode"`

	// programs lists the programs to load from the artifact and where to
	// attach each, in every selected pod.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Programs []TenantProgram `json:"programs"`

	// globalData overrides global variables declared by the artifact, by
	// name; each value is base64 and must be as long as the variable (at most
	// 4096 bytes).
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.size() <= 64 && k.matches('^[A-Za-z_][A-Za-z0-9_]*$'))",message="globalData keys must be C identifiers of at most 64 characters"
	// +kubebuilder:validation:XValidation:rule="self.all(k, self[k].size() <= 4096)",message="globalData values must be at most 4096 bytes"
	GlobalData map[string][]byte `json:"globalData,omitempty"`

	// podSelector selects, by their labels, the pods of this object's
	// namespace whose network namespaces and containers the programs
	// attach in; {} selects every pod of the namespace. It never selects a
	// pod of another namespace: agents look for pods in this namespace
	// only. Pods with hostNetwork share the node's network namespace and get
	// no network program.
	// +required
	PodSelector LabelSelector `json:"podSelector"`

	// nodeSelector selects the nodes, by their labels, on which the
	// programs run for the selected pods there; {} selects every node.
	// +required
	NodeSelector LabelSelector `json:"nodeSelector"`
}

// TenantProgram selects one program of the artifact and says where to
// attach it in each selected pod. It carries exactly one attach block, the
// one for its type, as Program does. xdp, tc and tcx name interfaces inside
// each pod's network namespace (interfaceSelector.interfaces; a tenant has
// no primaryNodeInterface); uprobe names a container of each pod. The
// other blocks (tracepoint, kprobe, fentry, cgroup, rawTracepoint) attach on
// the node, once, and need the type granted to the namespace by the
// cluster's BpfTenantGrant.
//
// +kubebuilder:validation:XValidation:rule="has(self.xdp) == (self.type == 'xdp')",message="type xdp takes the xdp attach block, and only type xdp does"
// +kubebuilder:validation:XValidation:rule="has(self.tc) == (self.type == 'tc')",message="type tc takes the tc attach block, and only type tc does"
// +kubebuilder:validation:XValidation:rule="has(self.tcx) == (self.type == 'tcx')",message="type tcx takes the tcx attach block, and only type tcx does"
// +kubebuilder:validation:XValidation:rule="has(self.tracepoint) == (self.type == 'tracepoint')",message="type tracepoint takes the tracepoint attach block, and only type tracepoint does"
// +kubebuilder:validation:XValidation:rule="has(self.kprobe) == (self.type in ['kprobe', 'kretprobe'])",message="types kprobe and kretprobe take the kprobe attach block, and only they do"
// +kubebuilder:validation:XValidation:rule="has(self.uprobe) == (self.type in ['uprobe', 'uretprobe'])",message="types uprobe and uretprobe take the uprobe attach block, and only they do"
// +kubebuilder:validation:XValidation:rule="has(self.fentry) == (self.type in ['fentry', 'fexit'])",message="types fentry and fexit take the fentry attach block, and only they do"
// +kubebuilder:validation:XValidation:rule="has(self.cgroup) == (self.type == 'cgroup')",message="type cgroup takes the cgroup attach block, and only type cgroup does"
// +kubebuilder:validation:XValidation:rule="has(self.rawTracepoint) == (self.type in ['raw_tracepoint', 'tp_btf'])",message="types raw_tracepoint and tp_btf take the rawTracepoint attach block, and only they do"
// +kubebuilder:validation:XValidation:rule="!has(self.xdp) || (has(self.xdp.interfaceSelector.interfaces) && !(has(self.xdp.interfaceSelector.primaryNodeInterface) && self.xdp.interfaceSelector.primaryNodeInterface))",message="a tenant's xdp program attaches to interfaces named inside its pods (interfaceSelector.interfaces); primaryNodeInterface is the node's"
// +kubebuilder:validation:XValidation:rule="!has(self.tc) || (has(self.tc.interfaceSelector.interfaces) && !(has(self.tc.interfaceSelector.primaryNodeInterface) && self.tc.interfaceSelector.primaryNodeInterface))",message="a tenant's tc program attaches to interfaces named inside its pods (interfaceSelector.interfaces); primaryNodeInterface is the node's"
// +kubebuilder:validation:XValidation:rule="!has(self.tcx) || (has(self.tcx.interfaceSelector.interfaces) && !(has(self.tcx.interfaceSelector.primaryNodeInterface) && self.tcx.interfaceSelector.primaryNodeInterface))",message="a tenant's tcx program attaches to interfaces named inside its pods (interfaceSelector.interfaces); primaryNodeInterface is the node's"
type TenantProgram struct {
	// name is the program's function name in the artifact.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	Name string `json:"name"`

	// type is the kind of program and how it attaches.
	// +required
	Type ProgramType `json:"type"`

	// xdp attaches a program of type xdp to interfaces in each selected
	// pod's network namespace.
	// +optional
	XDP *XDPAttach `json:"xdp,omitempty"`
	// tc attaches a program of type tc to interfaces in each selected pod's
	// network namespace.
	// +optional
	TC *TCAttach `json:"tc,omitempty"`
	// tcx attaches a program of type tcx to interfaces in each selected
	// pod's network namespace.
	// +optional
	TCX *TCXAttach `json:"tcx,omitempty"`
	// uprobe attaches a program of type uprobe or uretprobe inside a
	// container of each selected pod.
	// +optional
	Uprobe *TenantUprobeAttach `json:"uprobe,omitempty"`
	// tracepoint attaches a program of type tracepoint (granted only).
	// +optional
	Tracepoint *TracepointAttach `json:"tracepoint,omitempty"`
	// kprobe attaches a program of type kprobe or kretprobe (granted only).
	// +optional
	Kprobe *KprobeAttach `json:"kprobe,omitempty"`
	// fentry attaches a program of type fentry or fexit (granted only).
	// +optional
	Fentry *FentryAttach `json:"fentry,omitempty"`
	// cgroup attaches a program of type cgroup (granted only).
	// +optional
	Cgroup *CgroupAttach `json:"cgroup,omitempty"`
	// rawTracepoint attaches a program of type raw_tracepoint or tp_btf
	// (granted only).
	// +optional
	RawTracepoint *RawTracepointAttach `json:"rawTracepoint,omitempty"`
}

// TenantUprobeAttach attaches a uprobe or uretprobe to a function of an
// executable or library inside a container of each selected pod, resolved
// through the container's root, and fires for that container's process
// only. Unlike UprobeAttach, whose target is a path on the node, it names
// the container and a target inside it: a path or a library name.
//
// +kubebuilder:validation:XValidation:rule="has(self.target) != has(self.library)",message="set either target (a path inside the container) or library (a library name the container's process maps)"
// +kubebuilder:validation:XValidation:rule="has(self.function) || has(self.offset)",message="uprobe needs a function, an offset, or both"
type TenantUprobeAttach struct {
	// container names the container, in each selected pod, whose process
	// is probed.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Container string `json:"container"`

	// target is the path of the executable or library inside the
	// container.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	Target string `json:"target,omitempty"`

	// library names a shared library the container's process maps, e.g.
	// "libc" or "libssl.so.3", instead of target.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[^/\s]+$`
	Library string `json:"library,omitempty"`

	// function is the symbol to probe.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Function string `json:"function,omitempty"`

	// offset is relative to function, or an address in the file without
	// one.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Offset int64 `json:"offset,omitempty"`
}

// BpfTenantProgramConfigList is a list of BpfTenantProgramConfigs.
//
// +kubebuilder:object:root=true
type BpfTenantProgramConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BpfTenantProgramConfig `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BpfTenantProgramConfig{}, &BpfTenantProgramConfigList{})
}
