package agent

// The agent's permissions, generated into config/rbac/agent/role.yaml. Keep
// them to what the agent does: read configs, nodes and pods' metadata (its
// node's, to name the pods holding BPF programs and to find the pods of
// tenant configs), the cluster's tenant grant, write BpfPrograms,
// BpfTenantPrograms and its node's BpfNode, and emit events. Which
// BpfPrograms, BpfTenantPrograms and BpfNode (only its node's) is enforced
// by the ValidatingAdmissionPolicy in config/rbac.

// +kubebuilder:rbac:groups=bpfd.io,resources=bpfprogramconfigs,verbs=get;list;watch
// +kubebuilder:rbac:groups=bpfd.io,resources=bpfprograms,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=bpfd.io,resources=bpfprograms/status,verbs=update
// +kubebuilder:rbac:groups=bpfd.io,resources=bpftenantprogramconfigs,verbs=get;list;watch
// +kubebuilder:rbac:groups=bpfd.io,resources=bpftenantprograms,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=bpfd.io,resources=bpftenantprograms/status,verbs=update
// +kubebuilder:rbac:groups=bpfd.io,resources=bpftenantgrants,verbs=get;list;watch
// +kubebuilder:rbac:groups=bpfd.io,resources=bpfnodes,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=bpfd.io,resources=bpfnodes/status,verbs=update
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
