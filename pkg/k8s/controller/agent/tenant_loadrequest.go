package agent

import (
	"fmt"
	"slices"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// Metadata the agent sets on the programs it loads for tenant configs,
// beside MetadataConfig (the config's name), MetadataConfigUID and
// MetadataRequestHash. Their MetadataManagedBy is ManagedByAgentTenant, so
// that a cluster-scoped config of the same name never finds them.
const (
	// MetadataNamespace holds the BpfTenantProgramConfig's namespace.
	MetadataNamespace = "bpfd.io/namespace"
	// ManagedByAgentTenant is the MetadataManagedBy of programs the agent
	// loaded for a BpfTenantProgramConfig.
	ManagedByAgentTenant = "bpfd-agent-tenant"
)

// TenantLoadRequests returns the Load requests that make bpfd run the tenant
// config's programs for pods on a node, or none when no program has
// anywhere to attach (no selected pod runs here, or none has the
// processes its programs need). XDP, TC and TCX programs attach to each
// named interface in each pod's network namespace (netns
// /proc/<pid>/ns/net of a process of the pod), uprobes and uretprobes in
// the named container of each pod that has it (container_pid); other
// program types, which bpfd admits only when granted, attach once. As in
// LoadRequests, the first request holds each program at its first attach
// point and each further attach point is a request of its own whose
// MapOwnerId the caller sets. Every request carries the config (name and
// namespace) as the owner, and the tenant scope: the uids of pods and
// grants, the program types BpfTenantGrant grants the namespace. A program
// of a type neither a tenant's by default nor granted is an error wrapping
// ErrTenantScope, whether or not any pod is selected.
func TenantLoadRequests(cfg *v1alpha1.BpfTenantProgramConfig, pods []tenantPod, grants []v1alpha1.ProgramType) ([]*bpfdv1.LoadRequest, error) {
	// Admission refused these already; a config admitted before its grant
	// was withdrawn, or written around admission, is refused here too,
	// before bpfd refuses it again.
	for _, p := range cfg.Spec.Programs {
		if !slices.Contains(v1alpha1.TenantDefaultTypes, p.Type) && !slices.Contains(grants, p.Type) {
			return nil, fmt.Errorf("program %s: type %s: %w, and namespace %s has no grant of it in BpfTenantGrant %s",
				p.Name, p.Type, ErrTenantScope, cfg.Namespace, v1alpha1.TenantGrantName)
		}
	}
	if len(pods) == 0 {
		return nil, nil
	}
	tenant := &bpfdv1.Tenant{}
	for _, p := range pods {
		tenant.PodUids = append(tenant.PodUids, p.uid)
	}
	slices.Sort(tenant.PodUids)
	for _, g := range grants {
		if t, ok := programTypes[g]; ok && !slices.Contains(tenant.Grants, t) {
			tenant.Grants = append(tenant.Grants, t)
		}
	}
	slices.Sort(tenant.Grants)
	request := func() *bpfdv1.LoadRequest {
		req := &bpfdv1.LoadRequest{
			Bytecode: &bpfdv1.Bytecode{
				Reference:  cfg.Spec.Bytecode.Image,
				PullPolicy: pullPolicies[cfg.Spec.Bytecode.PullPolicy],
			},
			Metadata: map[string]string{
				MetadataManagedBy: ManagedByAgentTenant,
				MetadataConfig:    cfg.Name,
				MetadataNamespace: cfg.Namespace,
				MetadataConfigUID: string(cfg.UID),
			},
			Owner:  &bpfdv1.Owner{Config: cfg.Name, Namespace: cfg.Namespace},
			Tenant: tenant,
		}
		if len(cfg.Spec.GlobalData) > 0 {
			req.GlobalData = make(map[string][]byte, len(cfg.Spec.GlobalData))
			for k, v := range cfg.Spec.GlobalData {
				req.GlobalData[k] = v
			}
		}
		return req
	}
	first := request()
	reqs := []*bpfdv1.LoadRequest{first}
	for _, p := range cfg.Spec.Programs {
		attaches, err := tenantAttachSpecs(p, pods)
		if err != nil {
			return nil, fmt.Errorf("program %s: %w", p.Name, err)
		}
		for i, a := range attaches {
			lp := &bpfdv1.LoadProgram{Name: p.Name, Type: programTypes[p.Type], Attach: a}
			if i == 0 {
				first.Programs = append(first.Programs, lp)
				continue
			}
			more := request()
			more.Programs = []*bpfdv1.LoadProgram{lp}
			reqs = append(reqs, more)
		}
	}
	if len(first.Programs) == 0 {
		return nil, nil
	}
	hash, err := requestHash(reqs)
	if err != nil {
		return nil, err
	}
	for _, req := range reqs {
		req.Metadata[MetadataRequestHash] = hash
	}
	return reqs, nil
}

// tenantAttachSpecs returns the attach specs of a tenant's program p in
// pods: one per pod and interface for network programs, one per pod with
// the container for uprobes, one for the others.
func tenantAttachSpecs(p v1alpha1.TenantProgram, pods []tenantPod) ([]*bpfdv1.AttachSpec, error) {
	// The cluster's attach blocks, as a Program, for the conversions
	// LoadRequests makes; interfaces are those named, in each pod.
	prog := v1alpha1.Program{Name: p.Name, Type: p.Type, XDP: p.XDP, TC: p.TC, TCX: p.TCX, Tracepoint: p.Tracepoint,
		Kprobe: p.Kprobe, Fentry: p.Fentry, Cgroup: p.Cgroup, RawTracepoint: p.RawTracepoint}
	interfaces := func(sel v1alpha1.InterfaceSelector) ([]string, error) {
		if sel.PrimaryNodeInterface {
			return nil, fmt.Errorf("primaryNodeInterface is the node's, not a tenant's: %w", ErrTenantScope)
		}
		return sel.Interfaces, nil
	}
	switch p.Type {
	case v1alpha1.ProgramTypeXDP, v1alpha1.ProgramTypeTC, v1alpha1.ProgramTypeTCX:
		var out []*bpfdv1.AttachSpec
		for _, pod := range pods {
			if pod.netnsPID == 0 {
				continue
			}
			specs, err := attachSpecs(prog, interfaces)
			if err != nil {
				return nil, err
			}
			for _, a := range specs {
				switch s := a.GetSpec().(type) {
				case *bpfdv1.AttachSpec_Xdp:
					s.Xdp.Netns = netnsPath(pod.netnsPID)
				case *bpfdv1.AttachSpec_Tc:
					s.Tc.Netns = netnsPath(pod.netnsPID)
				case *bpfdv1.AttachSpec_Tcx:
					s.Tcx.Netns = netnsPath(pod.netnsPID)
				}
			}
			out = append(out, specs...)
		}
		return out, nil
	case v1alpha1.ProgramTypeUprobe, v1alpha1.ProgramTypeUretprobe:
		if p.Uprobe == nil {
			return nil, fmt.Errorf("type %q without its attach block", p.Type)
		}
		var out []*bpfdv1.AttachSpec
		for _, pod := range pods {
			pid, ok := pod.containers[p.Uprobe.Container]
			if !ok {
				continue
			}
			out = append(out, &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Uprobe{Uprobe: &bpfdv1.UprobeAttach{
				Target: p.Uprobe.Target, Library: p.Uprobe.Library, Function: p.Uprobe.Function,
				Offset: uint64(p.Uprobe.Offset), ContainerPid: int32(pid),
			}}})
		}
		return out, nil
	}
	return attachSpecs(prog, interfaces)
}
