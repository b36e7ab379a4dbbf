package main

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// scc holds the fields of an OpenShift SecurityContextConstraints object
// (security.openshift.io/v1); decoding strictly into it refuses a field it
// does not know, so every rule of the SCC is one violations evaluates.
type scc struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations,omitempty"`
	} `json:"metadata"`
	AllowHostDirVolumePlugin bool     `json:"allowHostDirVolumePlugin"`
	AllowHostIPC             bool     `json:"allowHostIPC"`
	AllowHostNetwork         bool     `json:"allowHostNetwork"`
	AllowHostPID             bool     `json:"allowHostPID"`
	AllowHostPorts           bool     `json:"allowHostPorts"`
	AllowPrivilegeEscalation *bool    `json:"allowPrivilegeEscalation"`
	AllowPrivilegedContainer bool     `json:"allowPrivilegedContainer"`
	AllowedCapabilities      []string `json:"allowedCapabilities"`
	DefaultAddCapabilities   []string `json:"defaultAddCapabilities"`
	RequiredDropCapabilities []string `json:"requiredDropCapabilities"`
	ReadOnlyRootFilesystem   bool     `json:"readOnlyRootFilesystem"`
	RunAsUser                strategy `json:"runAsUser"`
	SELinuxContext           strategy `json:"seLinuxContext"`
	FSGroup                  strategy `json:"fsGroup"`
	SupplementalGroups       strategy `json:"supplementalGroups"`
	SeccompProfiles          []string `json:"seccompProfiles"`
	Volumes                  []string `json:"volumes"`
	Users                    []string `json:"users"`
	Groups                   []string `json:"groups"`
	Priority                 *int32   `json:"priority"`
}

type strategy struct {
	Type string `json:"type"`
}

// The ranges OpenShift allocates to the pod's namespace (its annotations
// openshift.io/sa.scc.uid-range and supplemental-groups): a uid, fsGroup
// or group a pod names must lie in them under MustRunAs(Range).
const (
	rangeMin = 1000680000
	rangeMax = 1000689999
)

// violations evaluates a pod against the SCC as OpenShift's admission
// does for the fields the SCC holds, with the namespace's ranges above:
// each is a reason the SCC refuses the pod.
func (s *scc) violations(pod corev1.PodSpec) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if pod.HostNetwork && !s.AllowHostNetwork {
		bad("host network is not allowed")
	}
	if pod.HostPID && !s.AllowHostPID {
		bad("host PID is not allowed")
	}
	if pod.HostIPC && !s.AllowHostIPC {
		bad("host IPC is not allowed")
	}
	for _, v := range pod.Volumes {
		kind := volumeKind(v)
		if !slices.Contains(s.Volumes, kind) && !slices.Contains(s.Volumes, "*") {
			bad("volume %s: %s volumes are not allowed", v.Name, kind)
		}
		if kind == "hostPath" && !s.AllowHostDirVolumePlugin {
			bad("volume %s: host paths are not allowed", v.Name)
		}
	}
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if g := psc.FSGroup; g != nil && s.FSGroup.Type == "MustRunAs" && !inRange(*g) {
		bad("fsGroup %d is outside the namespace's range", *g)
	}
	for _, g := range psc.SupplementalGroups {
		if s.SupplementalGroups.Type == "MustRunAs" && !inRange(g) {
			bad("supplemental group %d is outside the namespace's range", g)
		}
	}
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		sc := c.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		if ptr.Deref(sc.Privileged, false) && !s.AllowPrivilegedContainer {
			bad("container %s: privileged containers are not allowed", c.Name)
		}
		if sc.Capabilities != nil {
			for _, cp := range sc.Capabilities.Add {
				if !slices.Contains(s.AllowedCapabilities, string(cp)) && !slices.Contains(s.AllowedCapabilities, "*") && !slices.Contains(s.DefaultAddCapabilities, string(cp)) {
					bad("container %s: capability %s may not be added", c.Name, cp)
				}
			}
		}
		if ptr.Deref(sc.AllowPrivilegeEscalation, false) && !ptr.Deref(s.AllowPrivilegeEscalation, true) {
			bad("container %s: privilege escalation is not allowed", c.Name)
		}
		if s.ReadOnlyRootFilesystem && sc.ReadOnlyRootFilesystem != nil && !*sc.ReadOnlyRootFilesystem {
			bad("container %s: the root file system must be read-only", c.Name)
		}
		for _, p := range c.Ports {
			if p.HostPort != 0 && !s.AllowHostPorts {
				bad("container %s: host port %d is not allowed", c.Name, p.HostPort)
			}
		}
		uid := sc.RunAsUser
		if uid == nil {
			uid = psc.RunAsUser
		}
		if uid != nil && s.RunAsUser.Type == "MustRunAsRange" && !inRange(*uid) {
			bad("container %s: uid %d is outside the namespace's range", c.Name, *uid)
		}
		se := sc.SELinuxOptions
		if se == nil {
			se = psc.SELinuxOptions
		}
		if se != nil && s.SELinuxContext.Type == "MustRunAs" {
			bad("container %s: SELinux options are assigned by the SCC", c.Name)
		}
		prof := sc.SeccompProfile
		if prof == nil {
			prof = psc.SeccompProfile
		}
		if prof != nil {
			name := map[corev1.SeccompProfileType]string{corev1.SeccompProfileTypeRuntimeDefault: "runtime/default", corev1.SeccompProfileTypeUnconfined: "unconfined"}[prof.Type]
			if prof.Type == corev1.SeccompProfileTypeLocalhost {
				name = "localhost/" + ptr.Deref(prof.LocalhostProfile, "")
			}
			if !slices.Contains(s.SeccompProfiles, name) && !slices.Contains(s.SeccompProfiles, "*") {
				bad("container %s: seccomp profile %s is not allowed", c.Name, name)
			}
		}
	}
	return out
}

// looserIn lists where other admits what s does not.
func (s *scc) looserIn(other *scc) []string {
	var out []string
	flag := func(name string, mine, theirs bool) {
		if theirs && !mine {
			out = append(out, name)
		}
	}
	flag("allowHostDirVolumePlugin", s.AllowHostDirVolumePlugin, other.AllowHostDirVolumePlugin)
	flag("allowHostIPC", s.AllowHostIPC, other.AllowHostIPC)
	flag("allowHostNetwork", s.AllowHostNetwork, other.AllowHostNetwork)
	flag("allowHostPID", s.AllowHostPID, other.AllowHostPID)
	flag("allowHostPorts", s.AllowHostPorts, other.AllowHostPorts)
	flag("allowPrivilegeEscalation", ptr.Deref(s.AllowPrivilegeEscalation, true), ptr.Deref(other.AllowPrivilegeEscalation, true))
	flag("allowPrivilegedContainer", s.AllowPrivilegedContainer, other.AllowPrivilegedContainer)
	flag("readOnlyRootFilesystem off", !s.ReadOnlyRootFilesystem, !other.ReadOnlyRootFilesystem)
	extra := func(name string, mine, theirs []string) {
		for _, x := range theirs {
			if !slices.Contains(mine, x) {
				out = append(out, name+": "+x)
			}
		}
	}
	extra("allowedCapabilities", s.AllowedCapabilities, other.AllowedCapabilities)
	extra("defaultAddCapabilities", s.DefaultAddCapabilities, other.DefaultAddCapabilities)
	extra("seccompProfiles", s.SeccompProfiles, other.SeccompProfiles)
	extra("volumes", s.Volumes, other.Volumes)
	extra("users", s.Users, other.Users)
	extra("groups", s.Groups, other.Groups)
	for _, x := range s.RequiredDropCapabilities {
		if !slices.Contains(other.RequiredDropCapabilities, x) {
			out = append(out, "requiredDropCapabilities lacks "+x)
		}
	}
	for name, st := range map[string][2]strategy{"runAsUser": {s.RunAsUser, other.RunAsUser}, "seLinuxContext": {s.SELinuxContext, other.SELinuxContext},
		"fsGroup": {s.FSGroup, other.FSGroup}, "supplementalGroups": {s.SupplementalGroups, other.SupplementalGroups}} {
		if st[0] != st[1] {
			out = append(out, name+": "+st[1].Type)
		}
	}
	slices.Sort(out)
	return out
}

func inRange(id int64) bool { return id >= rangeMin && id <= rangeMax }

// volumeKind names a volume's type as an SCC's volumes list does.
func volumeKind(v corev1.Volume) string {
	switch s := v.VolumeSource; {
	case s.CSI != nil:
		return "csi"
	case s.ConfigMap != nil:
		return "configMap"
	case s.Secret != nil:
		return "secret"
	case s.EmptyDir != nil:
		return "emptyDir"
	case s.Projected != nil:
		return "projected"
	case s.DownwardAPI != nil:
		return "downwardAPI"
	case s.PersistentVolumeClaim != nil:
		return "persistentVolumeClaim"
	case s.Ephemeral != nil:
		return "ephemeral"
	case s.HostPath != nil:
		return "hostPath"
	}
	return "other"
}
