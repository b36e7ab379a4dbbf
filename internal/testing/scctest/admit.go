package scctest

import (
	"fmt"
	"slices"
	"strings"

	securityv1 "github.com/openshift/api/security/v1"
	corev1 "k8s.io/api/core/v1"
)

// Namespace is what OpenShift allocates to a namespace and assigns to pods
// that do not choose: its annotations openshift.io/sa.scc.uid-range,
// openshift.io/sa.scc.mcs and openshift.io/sa.scc.supplemental-groups.
type Namespace struct {
	// UIDs is the range runAsUser MustRunAsRange draws from when the SCC
	// names none.
	UIDs securityv1.IDRange
	// MCSLevel is the SELinux level MustRunAs assigns when the SCC names
	// none, e.g. s0:c26,c15.
	MCSLevel string
	// Groups is the range fsGroup and supplementalGroups MustRunAs accept
	// when the SCC names none.
	Groups securityv1.IDRange
}

// DefaultNamespace is a namespace as OpenShift allocates them.
var DefaultNamespace = Namespace{
	UIDs:     securityv1.IDRange{Min: 1000680000, Max: 1000689999},
	MCSLevel: "s0:c26,c15",
	Groups:   securityv1.IDRange{Min: 1000680000, Max: 1000689999},
}

// Violation is one reason an SCC refuses a pod: the field and why.
type Violation struct {
	// Field is the pod spec's field, e.g.
	// spec.containers[bpfd].securityContext.privileged.
	Field  string
	Reason string
}

func (v Violation) Error() string { return v.Field + ": " + v.Reason }

// Container is what a container runs with once admitted: the values it set
// and those the SCC assigned.
type Container struct {
	Name                     string
	Privileged               bool
	RunAsUser                *int64
	RunAsNonRoot             bool
	Add, Drop                []corev1.Capability
	AllowPrivilegeEscalation bool
	ReadOnlyRootFilesystem   bool
	SELinux                  corev1.SELinuxOptions
	// Seccomp is the profile in the SCC's notation: runtime/default,
	// unconfined or localhost/<path>.
	Seccomp string
}

// Result is Admit's verdict: the violations, none when the SCC admits the
// pod, and what each container runs with.
type Result struct {
	Violations []Violation
	Containers []Container
}

// Admit evaluates pod, in a namespace ns, against scc. The rules, each
// against the SCC's fields:
//   - host namespaces: hostNetwork, hostPID and hostIPC need
//     allowHostNetwork, allowHostPID and allowHostIPC; a container port with
//     a hostPort, or any container port of a hostNetwork pod (the API server
//     sets its hostPort), needs allowHostPorts.
//   - volumes: each volume's type must be in volumes (or volumes holds *);
//     hostPath needs allowHostDirVolumePlugin as well.
//   - privileged: a privileged container needs allowPrivilegedContainer.
//   - capabilities: each added capability must be in allowedCapabilities
//     (or that holds *) or defaultAddCapabilities, and never in
//     requiredDropCapabilities, which are added to every container's drop
//     list.
//   - runAsUser (the container's, else the pod's): MustRunAs needs uid;
//     MustRunAsRange a uid in uidRangeMin..uidRangeMax, else the
//     namespace's range, and assigns its first uid when unset;
//     MustRunAsNonRoot refuses uid 0 and runAsNonRoot false and sets
//     runAsNonRoot; RunAsAny takes anything.
//   - seLinuxContext: MustRunAs assigns seLinuxOptions (the SCC's, with the
//     namespace's level when the SCC names none) to containers that set
//     none, and refuses options that differ from them in user, role, type
//     or level; RunAsAny takes anything.
//   - fsGroup and supplementalGroups: MustRunAs needs each gid in the SCC's
//     ranges, else the namespace's.
//   - allowPrivilegeEscalation: when false, a container may not set
//     allowPrivilegeEscalation true nor be privileged, and is set to false.
//   - readOnlyRootFilesystem: when true, a container may not set it false,
//     and is set to true.
//   - seccompProfiles: when set without *, the container's profile (else the
//     pod's) must be listed; one that sets none is given the first.
//   - not modelled, hence refused: sysctls, a procMount other than Default,
//     user namespaces (hostUsers false), windowsOptions.
func Admit(scc *securityv1.SecurityContextConstraints, pod *corev1.PodSpec, ns Namespace) Result {
	var r Result
	bad := func(field, format string, args ...any) {
		r.Violations = append(r.Violations, Violation{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if pod.HostNetwork && !scc.AllowHostNetwork {
		bad("spec.hostNetwork", "host network is not allowed")
	}
	if pod.HostPID && !scc.AllowHostPID {
		bad("spec.hostPID", "host PID namespace is not allowed")
	}
	if pod.HostIPC && !scc.AllowHostIPC {
		bad("spec.hostIPC", "host IPC namespace is not allowed")
	}
	if pod.HostUsers != nil && !*pod.HostUsers {
		bad("spec.hostUsers", "user namespaces are not modelled")
	}
	for _, v := range pod.Volumes {
		field := "spec.volumes[" + v.Name + "]"
		t := volumeType(v.VolumeSource)
		if !slices.Contains(scc.Volumes, securityv1.FSTypeAll) && !slices.Contains(scc.Volumes, t) {
			bad(field, "volume type %s is not allowed (allowed: %v)", t, scc.Volumes)
		}
		if t == securityv1.FSTypeHostPath && !scc.AllowHostDirVolumePlugin {
			bad(field, "host path volumes are not allowed")
		}
	}
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if len(psc.Sysctls) > 0 {
		bad("spec.securityContext.sysctls", "sysctls are not modelled")
	}
	if psc.FSGroup != nil && scc.FSGroup.Type == securityv1.FSGroupStrategyMustRunAs && !inRanges(*psc.FSGroup, scc.FSGroup.Ranges, ns.Groups) {
		bad("spec.securityContext.fsGroup", "gid %d is not in the allowed ranges", *psc.FSGroup)
	}
	if scc.SupplementalGroups.Type == securityv1.SupplementalGroupsStrategyMustRunAs {
		for _, g := range psc.SupplementalGroups {
			if !inRanges(g, scc.SupplementalGroups.Ranges, ns.Groups) {
				bad("spec.securityContext.supplementalGroups", "gid %d is not in the allowed ranges", g)
			}
		}
	}
	check := func(kind string, c *corev1.Container) {
		field := "spec." + kind + "[" + c.Name + "]"
		out, vs := admitContainer(scc, pod, psc, c, field, ns)
		r.Violations = append(r.Violations, vs...)
		r.Containers = append(r.Containers, out)
	}
	for i := range pod.InitContainers {
		check("initContainers", &pod.InitContainers[i])
	}
	for i := range pod.Containers {
		check("containers", &pod.Containers[i])
	}
	for i := range pod.EphemeralContainers {
		c := corev1.Container(pod.EphemeralContainers[i].EphemeralContainerCommon)
		check("ephemeralContainers", &c)
	}
	return r
}

func admitContainer(scc *securityv1.SecurityContextConstraints, pod *corev1.PodSpec, psc *corev1.PodSecurityContext, c *corev1.Container, field string, ns Namespace) (Container, []Violation) {
	var vs []Violation
	bad := func(f, format string, args ...any) {
		vs = append(vs, Violation{Field: field + f, Reason: fmt.Sprintf(format, args...)})
	}
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	out := Container{Name: c.Name, Privileged: sc.Privileged != nil && *sc.Privileged}

	for _, p := range c.Ports {
		if p.HostPort != 0 || pod.HostNetwork {
			if !scc.AllowHostPorts {
				bad(".ports", "host port %d is not allowed", p.ContainerPort)
			}
		}
	}
	if out.Privileged && !scc.AllowPrivilegedContainer {
		bad(".securityContext.privileged", "privileged containers are not allowed")
	}

	// Capabilities.
	if sc.Capabilities != nil {
		out.Drop = slices.Clone(sc.Capabilities.Drop)
		for _, cp := range sc.Capabilities.Add {
			switch {
			case hasCap(scc.RequiredDropCapabilities, cp):
				bad(".securityContext.capabilities.add", "capability %s must be dropped", cp)
			case hasCap(scc.AllowedCapabilities, "*"), hasCap(scc.AllowedCapabilities, cp), hasCap(scc.DefaultAddCapabilities, cp):
				out.Add = append(out.Add, cp)
			default:
				bad(".securityContext.capabilities.add", "capability %s is not allowed (allowed: %v)", cp, scc.AllowedCapabilities)
			}
		}
	}
	for _, cp := range scc.DefaultAddCapabilities {
		if !hasCap(out.Add, cp) {
			out.Add = append(out.Add, cp)
		}
	}
	for _, cp := range scc.RequiredDropCapabilities {
		if !hasCap(out.Drop, cp) && !hasCap(out.Drop, "ALL") {
			out.Drop = append(out.Drop, cp)
		}
	}

	// runAsUser.
	uid := sc.RunAsUser
	if uid == nil {
		uid = psc.RunAsUser
	}
	nonRoot := sc.RunAsNonRoot
	if nonRoot == nil {
		nonRoot = psc.RunAsNonRoot
	}
	out.RunAsNonRoot = nonRoot != nil && *nonRoot
	switch o := scc.RunAsUser; o.Type {
	case securityv1.RunAsUserStrategyMustRunAs:
		switch {
		case o.UID == nil:
			bad(".securityContext.runAsUser", "the SCC's MustRunAs names no uid")
		case uid != nil && *uid != *o.UID:
			bad(".securityContext.runAsUser", "uid %d is not %d", *uid, *o.UID)
		case uid == nil:
			uid = o.UID
		}
	case securityv1.RunAsUserStrategyMustRunAsRange:
		lo, hi := ns.UIDs.Min, ns.UIDs.Max
		if o.UIDRangeMin != nil && o.UIDRangeMax != nil {
			lo, hi = *o.UIDRangeMin, *o.UIDRangeMax
		}
		switch {
		case uid == nil:
			uid = &lo
		case *uid < lo || *uid > hi:
			bad(".securityContext.runAsUser", "uid %d is not in %d-%d", *uid, lo, hi)
		}
	case securityv1.RunAsUserStrategyMustRunAsNonRoot:
		switch {
		case uid != nil && *uid == 0:
			bad(".securityContext.runAsUser", "uid 0 is not allowed")
		case nonRoot != nil && !*nonRoot:
			bad(".securityContext.runAsNonRoot", "must be true")
		default:
			out.RunAsNonRoot = true
		}
	case securityv1.RunAsUserStrategyRunAsAny:
	default:
		bad(".securityContext.runAsUser", "the SCC's runAsUser strategy %q is unknown", o.Type)
	}
	out.RunAsUser = uid

	// SELinux.
	se := sc.SELinuxOptions
	if se == nil {
		se = psc.SELinuxOptions
	}
	switch o := scc.SELinuxContext; o.Type {
	case securityv1.SELinuxStrategyMustRunAs:
		want := corev1.SELinuxOptions{Level: ns.MCSLevel}
		if o.SELinuxOptions != nil {
			want = *o.SELinuxOptions
			if want.Level == "" {
				want.Level = ns.MCSLevel
			}
		}
		switch {
		case se == nil:
			out.SELinux = want
		case *se != want:
			bad(".securityContext.seLinuxOptions", "%+v is not the SCC's %+v", *se, want)
		default:
			out.SELinux = *se
		}
	case securityv1.SELinuxStrategyRunAsAny:
		if se != nil {
			out.SELinux = *se
		}
	default:
		bad(".securityContext.seLinuxOptions", "the SCC's seLinuxContext strategy %q is unknown", o.Type)
	}

	// Privilege escalation: privileged containers always may.
	out.AllowPrivilegeEscalation = out.Privileged || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation
	if scc.AllowPrivilegeEscalation != nil && !*scc.AllowPrivilegeEscalation {
		switch {
		case out.Privileged:
			bad(".securityContext.allowPrivilegeEscalation", "privileged containers escalate privileges, which is not allowed")
		case sc.AllowPrivilegeEscalation != nil && *sc.AllowPrivilegeEscalation:
			bad(".securityContext.allowPrivilegeEscalation", "privilege escalation is not allowed")
		}
		out.AllowPrivilegeEscalation = out.Privileged
	} else if sc.AllowPrivilegeEscalation == nil && scc.DefaultAllowPrivilegeEscalation != nil && !out.Privileged {
		out.AllowPrivilegeEscalation = *scc.DefaultAllowPrivilegeEscalation
	}

	// Read-only root file system.
	out.ReadOnlyRootFilesystem = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
	if scc.ReadOnlyRootFilesystem {
		if sc.ReadOnlyRootFilesystem != nil && !*sc.ReadOnlyRootFilesystem {
			bad(".securityContext.readOnlyRootFilesystem", "must be true")
		}
		out.ReadOnlyRootFilesystem = true
	}

	// Seccomp.
	prof := seccompName(sc.SeccompProfile)
	if prof == "" {
		prof = seccompName(psc.SeccompProfile)
	}
	if len(scc.SeccompProfiles) > 0 && !slices.Contains(scc.SeccompProfiles, "*") {
		switch {
		case prof == "":
			prof = scc.SeccompProfiles[0]
		case !slices.Contains(scc.SeccompProfiles, prof):
			bad(".securityContext.seccompProfile", "%s is not allowed (allowed: %v)", prof, scc.SeccompProfiles)
		}
	}
	out.Seccomp = prof

	if sc.ProcMount != nil && *sc.ProcMount != corev1.DefaultProcMount {
		bad(".securityContext.procMount", "procMount %s is not modelled", *sc.ProcMount)
	}
	if sc.WindowsOptions != nil || psc.WindowsOptions != nil {
		bad(".securityContext.windowsOptions", "not modelled")
	}
	return out, vs
}

// seccompName returns p in the SCC's notation; "" for none.
func seccompName(p *corev1.SeccompProfile) string {
	if p == nil {
		return ""
	}
	switch p.Type {
	case corev1.SeccompProfileTypeRuntimeDefault:
		return "runtime/default"
	case corev1.SeccompProfileTypeUnconfined:
		return "unconfined"
	case corev1.SeccompProfileTypeLocalhost:
		if p.LocalhostProfile != nil {
			return "localhost/" + *p.LocalhostProfile
		}
		return "localhost/"
	}
	return string(p.Type)
}

func hasCap(caps []corev1.Capability, c corev1.Capability) bool {
	return slices.ContainsFunc(caps, func(x corev1.Capability) bool {
		return strings.EqualFold(strings.TrimPrefix(string(x), "CAP_"), strings.TrimPrefix(string(c), "CAP_"))
	})
}

func inRanges(id int64, ranges []securityv1.IDRange, def securityv1.IDRange) bool {
	if len(ranges) == 0 {
		ranges = []securityv1.IDRange{def}
	}
	return slices.ContainsFunc(ranges, func(r securityv1.IDRange) bool { return id >= r.Min && id <= r.Max })
}

// volumeType returns the SCC volume type of v.
func volumeType(v corev1.VolumeSource) securityv1.FSType {
	switch {
	case v.HostPath != nil:
		return securityv1.FSTypeHostPath
	case v.EmptyDir != nil:
		return securityv1.FSTypeEmptyDir
	case v.Secret != nil:
		return securityv1.FSTypeSecret
	case v.ConfigMap != nil:
		return securityv1.FSTypeConfigMap
	case v.Projected != nil:
		return securityv1.FSProjected
	case v.DownwardAPI != nil:
		return securityv1.FSTypeDownwardAPI
	case v.PersistentVolumeClaim != nil:
		return securityv1.FSTypePersistentVolumeClaim
	case v.CSI != nil:
		return securityv1.FSTypeCSI
	case v.Ephemeral != nil:
		return securityv1.FSTypeEphemeral
	case v.Image != nil:
		return securityv1.FSTypeImage
	case v.NFS != nil:
		return securityv1.FSTypeNFS
	case v.ISCSI != nil:
		return securityv1.FSTypeISCSI
	case v.FlexVolume != nil:
		return securityv1.FSTypeFlexVolume
	}
	// Anything else is refused unless the SCC allows every type.
	return securityv1.FSTypeNone
}
