package scctest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	securityv1 "github.com/openshift/api/security/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// restrictedPod is a pod restricted-v2 admits as it is.
func restrictedPod() *corev1.PodSpec {
	return &corev1.PodSpec{
		SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		Containers: []corev1.Container{{Name: "app", SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		}}},
		Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}}},
	}
}

func sc(p *corev1.PodSpec) *corev1.SecurityContext { return p.Containers[0].SecurityContext }

// TestAdmit holds each rule to a case it must refuse and, where the rule
// assigns, to what it assigns.
func TestAdmit(t *testing.T) {
	cases := map[string]struct {
		scc  func(*securityv1.SecurityContextConstraints)
		pod  func(*corev1.PodSpec)
		want []string // the violations' fields
	}{
		"admitted":     {},
		"host network": {pod: func(p *corev1.PodSpec) { p.HostNetwork = true }, want: []string{"spec.hostNetwork"}},
		"host network, allowed": {
			scc: func(s *securityv1.SecurityContextConstraints) { s.AllowHostNetwork = true },
			pod: func(p *corev1.PodSpec) { p.HostNetwork = true },
		},
		"host network ports": {
			scc: func(s *securityv1.SecurityContextConstraints) { s.AllowHostNetwork = true },
			pod: func(p *corev1.PodSpec) {
				p.HostNetwork = true
				p.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080}}
			},
			want: []string{"spec.containers[app].ports"},
		},
		"host port": {pod: func(p *corev1.PodSpec) {
			p.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 80}}
		}, want: []string{"spec.containers[app].ports"}},
		"host PID": {pod: func(p *corev1.PodSpec) { p.HostPID = true }, want: []string{"spec.hostPID"}},
		"host IPC": {pod: func(p *corev1.PodSpec) { p.HostIPC = true }, want: []string{"spec.hostIPC"}},
		"host path": {
			pod: func(p *corev1.PodSpec) {
				p.Volumes = append(p.Volumes, corev1.Volume{Name: "bpffs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/sys/fs/bpf"}}})
			},
			want: []string{"spec.volumes[bpffs]", "spec.volumes[bpffs]"},
		},
		"host path listed but the plugin not allowed": {
			scc: func(s *securityv1.SecurityContextConstraints) {
				s.Volumes = append(s.Volumes, securityv1.FSTypeHostPath)
			},
			pod: func(p *corev1.PodSpec) {
				p.Volumes = append(p.Volumes, corev1.Volume{Name: "bpffs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/sys/fs/bpf"}}})
			},
			want: []string{"spec.volumes[bpffs]"},
		},
		"csi volume": {
			pod: func(p *corev1.PodSpec) {
				p.Volumes = append(p.Volumes, corev1.Volume{Name: "maps", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "csi.bpfd.io"}}})
			},
			want: []string{"spec.volumes[maps]"},
		},
		"csi volume, allowed": {
			scc: func(s *securityv1.SecurityContextConstraints) { s.Volumes = append(s.Volumes, securityv1.FSTypeCSI) },
			pod: func(p *corev1.PodSpec) {
				p.Volumes = append(p.Volumes, corev1.Volume{Name: "maps", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "csi.bpfd.io"}}})
			},
		},
		"any volume type": {
			scc: func(s *securityv1.SecurityContextConstraints) { s.Volumes = []securityv1.FSType{securityv1.FSTypeAll} },
			pod: func(p *corev1.PodSpec) {
				p.Volumes = append(p.Volumes, corev1.Volume{Name: "nfs", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{}}})
			},
		},
		"privileged":             {pod: func(p *corev1.PodSpec) { sc(p).Privileged = ptr.To(true) }, want: []string{"spec.containers[app].securityContext.privileged", "spec.containers[app].securityContext.allowPrivilegeEscalation"}},
		"capability not allowed": {pod: func(p *corev1.PodSpec) { sc(p).Capabilities.Add = []corev1.Capability{"BPF"} }, want: []string{"spec.containers[app].securityContext.capabilities.add"}},
		"capability allowed":     {pod: func(p *corev1.PodSpec) { sc(p).Capabilities.Add = []corev1.Capability{"NET_BIND_SERVICE"} }},
		"capability required dropped": {
			scc: func(s *securityv1.SecurityContextConstraints) {
				s.AllowedCapabilities, s.RequiredDropCapabilities = []corev1.Capability{"*"}, []corev1.Capability{"SYS_ADMIN"}
			},
			pod:  func(p *corev1.PodSpec) { sc(p).Capabilities.Add = []corev1.Capability{"CAP_SYS_ADMIN"} },
			want: []string{"spec.containers[app].securityContext.capabilities.add"},
		},
		"uid out of the namespace's range": {pod: func(p *corev1.PodSpec) { sc(p).RunAsUser = ptr.To[int64](1000) }, want: []string{"spec.containers[app].securityContext.runAsUser"}},
		"uid of the pod out of range":      {pod: func(p *corev1.PodSpec) { p.SecurityContext.RunAsUser = ptr.To[int64](0) }, want: []string{"spec.containers[app].securityContext.runAsUser"}},
		"uid in range":                     {pod: func(p *corev1.PodSpec) { sc(p).RunAsUser = ptr.To[int64](1000680005) }},
		"uid MustRunAs another": {
			scc: func(s *securityv1.SecurityContextConstraints) {
				s.RunAsUser = securityv1.RunAsUserStrategyOptions{Type: securityv1.RunAsUserStrategyMustRunAs, UID: ptr.To[int64](7)}
			},
			pod:  func(p *corev1.PodSpec) { sc(p).RunAsUser = ptr.To[int64](8) },
			want: []string{"spec.containers[app].securityContext.runAsUser"},
		},
		"root under MustRunAsNonRoot": {
			scc: func(s *securityv1.SecurityContextConstraints) {
				s.RunAsUser.Type = securityv1.RunAsUserStrategyMustRunAsNonRoot
			},
			pod:  func(p *corev1.PodSpec) { sc(p).RunAsUser = ptr.To[int64](0) },
			want: []string{"spec.containers[app].securityContext.runAsUser"},
		},
		"root under RunAsAny": {
			scc: func(s *securityv1.SecurityContextConstraints) {
				s.RunAsUser.Type = securityv1.RunAsUserStrategyRunAsAny
			},
			pod: func(p *corev1.PodSpec) { sc(p).RunAsUser = ptr.To[int64](0) },
		},
		"SELinux type of its own": {
			pod:  func(p *corev1.PodSpec) { sc(p).SELinuxOptions = &corev1.SELinuxOptions{Type: "spc_t"} },
			want: []string{"spec.containers[app].securityContext.seLinuxOptions"},
		},
		"SELinux type the SCC sets": {
			scc: func(s *securityv1.SecurityContextConstraints) {
				s.SELinuxContext.SELinuxOptions = &corev1.SELinuxOptions{Type: "spc_t"}
			},
			pod: func(p *corev1.PodSpec) {
				sc(p).SELinuxOptions = &corev1.SELinuxOptions{Type: "spc_t", Level: DefaultNamespace.MCSLevel}
			},
		},
		"fsGroup out of range": {pod: func(p *corev1.PodSpec) { p.SecurityContext.FSGroup = ptr.To[int64](0) }, want: []string{"spec.securityContext.fsGroup"}},
		"privilege escalation": {pod: func(p *corev1.PodSpec) { sc(p).AllowPrivilegeEscalation = ptr.To(true) }, want: []string{"spec.containers[app].securityContext.allowPrivilegeEscalation"}},
		"writable root, read-only required": {
			scc:  func(s *securityv1.SecurityContextConstraints) { s.ReadOnlyRootFilesystem = true },
			pod:  func(p *corev1.PodSpec) { sc(p).ReadOnlyRootFilesystem = ptr.To(false) },
			want: []string{"spec.containers[app].securityContext.readOnlyRootFilesystem"},
		},
		"unconfined seccomp": {
			pod: func(p *corev1.PodSpec) {
				sc(p).SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
			},
			want: []string{"spec.containers[app].securityContext.seccompProfile"},
		},
		"sysctls are not modelled": {
			pod: func(p *corev1.PodSpec) {
				p.SecurityContext.Sysctls = []corev1.Sysctl{{Name: "net.core.somaxconn", Value: "1024"}}
			},
			want: []string{"spec.securityContext.sysctls"},
		},
		"init containers count": {
			pod: func(p *corev1.PodSpec) {
				p.InitContainers = []corev1.Container{{Name: "init", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}}
			},
			want: []string{"spec.initContainers[init].securityContext.privileged", "spec.initContainers[init].securityContext.allowPrivilegeEscalation"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			scc, pod := RestrictedV2(), restrictedPod()
			if tc.scc != nil {
				tc.scc(scc)
			}
			if tc.pod != nil {
				tc.pod(pod)
			}
			var got []string
			for _, v := range Admit(scc, pod, DefaultNamespace).Violations {
				got = append(got, v.Field)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAssigned: what restricted-v2 gives a container that chose nothing.
func TestAssigned(t *testing.T) {
	pod := &corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}
	r := Admit(RestrictedV2(), pod, DefaultNamespace)
	if len(r.Violations) > 0 {
		t.Fatalf("violations: %v", r.Violations)
	}
	want := Container{
		Name:      "app",
		RunAsUser: ptr.To(DefaultNamespace.UIDs.Min),
		Drop:      []corev1.Capability{"ALL"},
		SELinux:   corev1.SELinuxOptions{Level: DefaultNamespace.MCSLevel},
		Seccomp:   "runtime/default",
	}
	if diff := cmp.Diff([]Container{want}, r.Containers); diff != "" {
		t.Errorf("assigned (-want +got):\n%s", diff)
	}
}
