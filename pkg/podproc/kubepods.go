package podproc

import (
	"regexp"
	"strings"
)

// PodCgroup is what a cgroup path says of a Kubernetes pod and container,
// when the kubelet named it.
type PodCgroup struct {
	// PodUID is the pod's metadata.uid.
	PodUID string
	// QOSClass is the pod's QoS class: Guaranteed, Burstable or BestEffort;
	// empty when the path is relative to a cgroup namespace below the
	// kubelet's QoS cgroups and does not show them (see ParsePodCgroup).
	QOSClass string
	// ContainerID is the container runtime's id of the container (the pod
	// sandbox is a container too); empty when the process is in the pod's
	// cgroup but in no container's, or in CRI-O's monitor (conmon).
	ContainerID string
	// Runtime is the container runtime the cgroup name shows: containerd,
	// cri-o or docker; empty when the name does not say (the cgroupfs
	// driver names containerd's and docker's containers by id alone).
	Runtime string
}

// The kubelet names a pod's cgroup after its QoS class and uid, and the
// container runtime names a container's cgroup inside it, in one of two
// ways depending on the cgroup driver:
//
//	systemd:  /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid, - as _>.slice/cri-containerd-<id>.scope
//	          (crio-<id>.scope, docker-<id>.scope; Guaranteed pods: kubepods-pod<uid>.slice)
//	cgroupfs: /kubepods/burstable/pod<uid>/<id>
//	          (crio-<id>; Guaranteed pods: /kubepods/pod<uid>/<id>)
//
// A kubelet with a cgroup root of its own (--cgroup-root, as kind has)
// nests these deeper: /kubelet.slice/kubelet-kubepods.slice/... or
// /kubelet/kubepods/...
//
// A process in a cgroup namespace of its own (an unprivileged container on
// cgroup v2) reads other processes' cgroups relative to its own, which is a
// container's: a pod's cgroup shows as
// /../../kubepods-besteffort-pod<uid>.slice/... or /../../pod<uid>/<id>.
var (
	systemdPod  = regexp.MustCompile(`^(?:[a-z0-9_]+-)*kubepods(?:-(besteffort|burstable))?-pod([0-9a-f_]+)\.slice$`)
	cgroupfsPod = regexp.MustCompile(`^pod([0-9a-f-]+)$`)
	// A container's scope under the systemd driver.
	systemdContainer = regexp.MustCompile(`^(cri-containerd|crio|crio-conmon|docker)-([0-9a-f]{64})\.scope$`)
	// A container's directory under the cgroupfs driver.
	cgroupfsContainer = regexp.MustCompile(`^(?:(crio|crio-conmon)-)?([0-9a-f]{64})$`)
	// Pod uids: a UUID, or the 32 hex digits of a static pod's hash.
	podUID = regexp.MustCompile(`^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$`)
)

var runtimeOfPrefix = map[string]string{
	"cri-containerd": "containerd",
	"crio":           "cri-o",
	"crio-conmon":    "cri-o",
	"docker":         "docker",
}

var qosOf = map[string]string{"": "Guaranteed", "burstable": "Burstable", "besteffort": "BestEffort"}

// ParsePodCgroup reads a cgroup path as the kubelet and the container
// runtimes name pods' and containers' cgroups, under either cgroup driver;
// false when the path names no pod. The path may be relative to a cgroup
// namespace (leading ".." elements), as a process in a container of its own
// cgroup namespace reads it; under the cgroupfs driver, a pod directory
// right below such elements is a pod's (or below them and a QoS
// directory): the cgroups above a container's namespace are the kubelet's
// and the runtime's, which no container may write.
func ParsePodCgroup(path string) (PodCgroup, bool) {
	elems := strings.Split(strings.Trim(path, "/"), "/")
	for i, e := range elems {
		if m := systemdPod.FindStringSubmatch(e); m != nil {
			uid := strings.ReplaceAll(m[2], "_", "-")
			if !podUID.MatchString(uid) {
				return PodCgroup{}, false
			}
			p := PodCgroup{PodUID: uid, QOSClass: qosOf[m[1]]}
			if i+1 < len(elems) {
				if c := systemdContainer.FindStringSubmatch(elems[i+1]); c != nil {
					p.Runtime = runtimeOfPrefix[c[1]]
					if c[1] != "crio-conmon" {
						p.ContainerID = c[2]
					}
				}
			}
			return p, true
		}
		if m := cgroupfsPod.FindStringSubmatch(e); m != nil && i > 0 {
			qos, ok := cgroupfsQOS(elems[:i])
			if !ok || !podUID.MatchString(m[1]) {
				continue
			}
			p := PodCgroup{PodUID: m[1], QOSClass: qos}
			if i+1 < len(elems) {
				if c := cgroupfsContainer.FindStringSubmatch(elems[i+1]); c != nil {
					p.Runtime = runtimeOfPrefix[c[1]]
					if c[1] != "crio-conmon" {
						p.ContainerID = c[2]
					}
				}
			}
			return p, true
		}
	}
	return PodCgroup{}, false
}

// cgroupfsQOS returns the QoS class of a pod whose cgroup's ancestors are
// parents under the cgroupfs driver: .../kubepods for Guaranteed,
// .../kubepods/burstable or .../kubepods/besteffort.
// Relative to a cgroup namespace, the parents may be ".." alone, the
// kubepods directory being above them (QoS unknown), or ".." and a QoS
// directory.
func cgroupfsQOS(parents []string) (string, bool) {
	last := parents[len(parents)-1]
	if last == "kubepods" {
		return qosOf[""], true
	}
	n := len(parents)
	if n >= 2 && (last == "burstable" || last == "besteffort") && (parents[n-2] == "kubepods" || allUp(parents[:n-1])) {
		return qosOf[last], true
	}
	if allUp(parents) {
		return "", true
	}
	return "", false
}

// allUp reports whether elems are all "..": the ancestors of a cgroup
// namespace's root.
func allUp(elems []string) bool {
	for _, e := range elems {
		if e != ".." {
			return false
		}
	}
	return len(elems) > 0
}
