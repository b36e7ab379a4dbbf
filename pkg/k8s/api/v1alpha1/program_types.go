package v1alpha1

// Program selects one program of the artifact and says where to attach it.
// It carries exactly one attach block, the one for its type: xdp, tc, tcx,
// tracepoint, kprobe (kprobe and kretprobe), uprobe (uprobe and uretprobe),
// fentry (fentry and fexit), cgroup or rawTracepoint (raw_tracepoint and
// tp_btf). Of an artifact's twin programs (one job through different hooks,
// as bcc's tools ship a tp_btf and a raw_tp variant, or an fentry and a
// kprobe variant), only the one named is loaded.
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
type Program struct {
	// name is the program's function name in the artifact.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	Name string `json:"name"`

	// type is the kind of program and how it attaches.
	// +required
	Type ProgramType `json:"type"`

	// xdp attaches a program of type xdp.
	// +optional
	XDP *XDPAttach `json:"xdp,omitempty"`
	// tc attaches a program of type tc.
	// +optional
	TC *TCAttach `json:"tc,omitempty"`
	// tcx attaches a program of type tcx.
	// +optional
	TCX *TCXAttach `json:"tcx,omitempty"`
	// tracepoint attaches a program of type tracepoint.
	// +optional
	Tracepoint *TracepointAttach `json:"tracepoint,omitempty"`
	// kprobe attaches a program of type kprobe or kretprobe.
	// +optional
	Kprobe *KprobeAttach `json:"kprobe,omitempty"`
	// uprobe attaches a program of type uprobe or uretprobe.
	// +optional
	Uprobe *UprobeAttach `json:"uprobe,omitempty"`
	// fentry attaches a program of type fentry or fexit.
	// +optional
	Fentry *FentryAttach `json:"fentry,omitempty"`
	// cgroup attaches a program of type cgroup.
	// +optional
	Cgroup *CgroupAttach `json:"cgroup,omitempty"`
	// rawTracepoint attaches a program of type raw_tracepoint or tp_btf.
	// +optional
	RawTracepoint *RawTracepointAttach `json:"rawTracepoint,omitempty"`
}

// ProgramType is a kind of program together with the way it attaches; the
// names are bpfd's program kinds.
// +kubebuilder:validation:Enum=xdp;tc;tcx;tracepoint;kprobe;kretprobe;uprobe;uretprobe;fentry;fexit;cgroup;raw_tracepoint;tp_btf
type ProgramType string

// The program types.
const (
	ProgramTypeXDP        ProgramType = "xdp"
	ProgramTypeTC         ProgramType = "tc"
	ProgramTypeTCX        ProgramType = "tcx"
	ProgramTypeTracepoint ProgramType = "tracepoint"
	ProgramTypeKprobe     ProgramType = "kprobe"
	ProgramTypeKretprobe  ProgramType = "kretprobe"
	ProgramTypeUprobe     ProgramType = "uprobe"
	ProgramTypeUretprobe  ProgramType = "uretprobe"
	ProgramTypeFentry     ProgramType = "fentry"
	ProgramTypeFexit      ProgramType = "fexit"
	ProgramTypeCgroup     ProgramType = "cgroup"
	// ProgramTypeRawTracepoint is a raw tracepoint program (raw_tp/NAME).
	ProgramTypeRawTracepoint ProgramType = "raw_tracepoint"
	// ProgramTypeTPBTF is a BTF-enabled tracepoint program (tp_btf/NAME).
	ProgramTypeTPBTF ProgramType = "tp_btf"
)

// InterfaceSelector names the network interfaces to attach to: either a
// list of names or the node's primary interface (the one of its default
// route).
//
// +kubebuilder:validation:XValidation:rule="has(self.interfaces) != (has(self.primaryNodeInterface) && self.primaryNodeInterface)",message="set either interfaces or primaryNodeInterface: true"
type InterfaceSelector struct {
	// interfaces lists interface names; the program attaches to each.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=15
	// +kubebuilder:validation:items:Pattern=`^[^\s/:]+$`
	Interfaces []string `json:"interfaces,omitempty"`

	// primaryNodeInterface attaches to the interface of the node's default
	// route.
	// +optional
	PrimaryNodeInterface bool `json:"primaryNodeInterface,omitempty"`
}

// XDPAttach attaches an XDP program to interfaces, in priority order with
// the other XDP programs there.
type XDPAttach struct {
	// +required
	InterfaceSelector InterfaceSelector `json:"interfaceSelector"`

	// priority orders the programs on an interface, lower first; bpfd's
	// default (500) when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Priority int32 `json:"priority,omitempty"`

	// proceedOn lists the return values after which the next program on the
	// interface runs; Pass and DispatcherReturn when unset.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=6
	ProceedOn []XDPAction `json:"proceedOn,omitempty"`
}

// XDPAction is an XDP program's return value.
// +kubebuilder:validation:Enum=Aborted;Drop;Pass;TX;Redirect;DispatcherReturn
type XDPAction string

// TCAttach attaches a TC (clsact) program to interfaces, in priority order
// with the other TC programs of the same direction there.
type TCAttach struct {
	// +required
	InterfaceSelector InterfaceSelector `json:"interfaceSelector"`

	// +required
	Direction Direction `json:"direction"`

	// priority orders the programs on an interface and direction, lower
	// first; bpfd's default (500) when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Priority int32 `json:"priority,omitempty"`

	// proceedOn lists the return values after which the next program runs;
	// OK, Pipe and DispatcherReturn when unset.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=10
	ProceedOn []TCAction `json:"proceedOn,omitempty"`
}

// TCAction is a TC program's return value.
// +kubebuilder:validation:Enum=OK;Reclassify;Shot;Pipe;Stolen;Queued;Repeat;Redirect;Trap;DispatcherReturn
type TCAction string

// TCXAttach attaches a TC program through TCX links, in priority order.
type TCXAttach struct {
	// +required
	InterfaceSelector InterfaceSelector `json:"interfaceSelector"`

	// +required
	Direction Direction `json:"direction"`

	// priority orders the programs on an interface and direction, lower
	// first; bpfd's default (500) when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Priority int32 `json:"priority,omitempty"`
}

// Direction is the traffic direction of a TC or TCX hook.
// +kubebuilder:validation:Enum=Ingress;Egress
type Direction string

// The directions.
const (
	Ingress Direction = "Ingress"
	Egress  Direction = "Egress"
)

// TracepointAttach attaches to a kernel tracepoint.
type TracepointAttach struct {
	// tracepoint is "group/name", e.g. "syscalls/sys_enter_openat".
	// +required
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_]+/[A-Za-z0-9_.]+$`
	Tracepoint string `json:"tracepoint"`
}

// KprobeAttach attaches a kprobe or kretprobe to a kernel function.
type KprobeAttach struct {
	// function is the kernel symbol.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Function string `json:"function"`

	// offset is added to the symbol's address (kprobe only).
	// +optional
	// +kubebuilder:validation:Minimum=0
	Offset int64 `json:"offset,omitempty"`
}

// UprobeAttach attaches a uprobe or uretprobe to a function of an
// executable or library on the node.
//
// +kubebuilder:validation:XValidation:rule="has(self.function) || has(self.offset)",message="uprobe needs a function, an offset, or both"
type UprobeAttach struct {
	// target is the path of the executable or library on the node.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	Target string `json:"target"`

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

// FentryAttach attaches an fentry or fexit program to a kernel function with
// BTF.
type FentryAttach struct {
	// function is the kernel function.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Function string `json:"function"`
}

// RawTracepointAttach attaches a raw tracepoint or a BTF-enabled
// tracepoint program to a kernel tracepoint.
type RawTracepointAttach struct {
	// tracepoint is the tracepoint's name without its group, e.g.
	// sched_switch.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_]+$`
	Tracepoint string `json:"tracepoint"`
}

// CgroupAttach attaches a cgroup program to a cgroup v2 directory.
type CgroupAttach struct {
	// path is the cgroup's directory on the node, e.g.
	// /sys/fs/cgroup/system.slice.
	// +required
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	Path string `json:"path"`

	// attachType is the cgroup hook.
	// +required
	AttachType CgroupAttachType `json:"attachType"`
}

// CgroupAttachType is a cgroup hook.
// +kubebuilder:validation:Enum=InetIngress;InetEgress;InetSockCreate;Inet4Bind;Inet6Bind;Inet4Connect;Inet6Connect;SockOps;Device;Sysctl;Getsockopt;Setsockopt
type CgroupAttachType string
