package agent

// The agent's permissions, generated into config/rbac/agent/role.yaml. Keep
// them to what the agent does: read configs and nodes, write BpfPrograms.
// Which BpfPrograms (only its node's) is enforced by the
// ValidatingAdmissionPolicy in config/rbac.

// +kubebuilder:rbac:groups=bpfd.io,resources=bpfprogramconfigs,verbs=get;list;watch
// +kubebuilder:rbac:groups=bpfd.io,resources=bpfprograms,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=bpfd.io,resources=bpfprograms/status,verbs=update
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
