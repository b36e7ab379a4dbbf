package operator

// The operator's permissions, generated into config/rbac/operator/role.yaml.
// Namespaced rules name the namespace the operator is deployed in; the
// kustomization in config/ rewrites it.

// +kubebuilder:rbac:groups=bpfd.io,resources=bpfprogramconfigs,verbs=get;list;watch;update
// +kubebuilder:rbac:groups=bpfd.io,resources=bpfprogramconfigs/status,verbs=update
// +kubebuilder:rbac:groups=bpfd.io,resources=bpfprograms,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=bpfd.io,resources=bpftenantprogramconfigs,verbs=get;list;watch;update
// +kubebuilder:rbac:groups=bpfd.io,resources=bpftenantprogramconfigs/status,verbs=update
// +kubebuilder:rbac:groups=bpfd.io,resources=bpftenantprograms,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups="",namespace=bpfd,resources=configmaps,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,namespace=bpfd,resources=daemonsets,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=bpfd,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",namespace=bpfd,resources=events,verbs=create;patch
