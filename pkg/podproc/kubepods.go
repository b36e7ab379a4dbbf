package podproc

import (
	"regexp"
	"slices"
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
	// A pod's slice: the name of its parent slice (a chain of
	// "-"-separated components ending in kubepods or kubepods-<qos>),
	// then -pod<uid>.
	systemdPod  = regexp.MustCompile(`^((?:[a-z0-9_]+-)*kubepods(?:-(besteffort|burstable))?)-pod([0-9a-f_]+)\.slice$`)
	cgroupfsPod = regexp.MustCompile(`^pod([0-9a-f-]+)$`)
	// A container's scope under the systemd driver.
	systemdContainer = regexp.MustCompile(`^(cri-containerd|crio|crio-conmon|docker)-([0-9a-f]{64})\.scope$`)
	// A container's directory under the cgroupfs driver.
	cgroupfsContainer = regexp.MustCompile(`^(?:(crio|crio-conmon)-)?([0-9a-f]{64})$`)
	// Pod uids: a UUID, or the 32 hex digits of a static pod's hash.
	podUID = regexp.MustCompile(`^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$`)
)

// cgroupfsRoots are the kubelet cgroup roots (--cgroup-root) under the
// cgroupfs driver whose pods ParsePodCgroup recognizes: the kubelet's
// default, the root, and kind's /kubelet. A cgroupfs name does not say
// where it lives, as a systemd slice's does, so the root is one of these
// known places, which only root may create.
var cgroupfsRoots = [][]string{nil, {"kubelet"}}

var runtimeOfPrefix = map[string]string{
	"cri-containerd": "containerd",
	"crio":           "cri-o",
	"crio-conmon":    "cri-o",
	"docker":         "docker",
}

var qosOf = map[string]string{"": "Guaranteed", "burstable": "Burstable", "besteffort": "BestEffort"}

// ParsePodCgroup reads a cgroup path as the kubelet and the container
// runtimes name pods' and containers' cgroups, under either cgroup driver;
// false when the path names no pod.
//
// A process that may create cgroups (a user's delegated subtree, a
// container with a writable cgroupfs) can name one like a pod's, so a path
// names a pod only where the kubelet puts the pod's cgroup, from the root
// of the path down:
//
//   - systemd: a slice's name encodes its parents ("a-b-c.slice" is in
//     "a.slice/a-b.slice"), which systemd enforces for the kubelet's
//     slices; a pod's slice must be below exactly the chain its name
//     implies, starting at the root (any kubelet --cgroup-root: the
//     chain's first slice is a child of the root, which only root may
//     create).
//   - cgroupfs: kubepods[/<qos>]/pod<uid> at the root or below kind's
//     /kubelet (cgroupfsRoots).
//
// The first element that looks like a pod's cgroup decides: a process in
// a cgroup below a pod's is that pod's, whatever its own cgroups are named.
//
// The path may be relative to a cgroup namespace (leading ".." elements),
// as a process in a container of its own cgroup namespace reads it; then
// the elements between the ".." and the pod's cgroup are the last ones of
// its chain (possibly none): the cgroups above a container's namespace are
// the kubelet's and the runtime's, which no container may write.
func ParsePodCgroup(path string) (PodCgroup, bool) {
	elems := strings.Split(strings.Trim(path, "/"), "/")
	up := 0
	for up < len(elems) && elems[up] == ".." {
		up++
	}
	relative, elems := up > 0, elems[up:]
	for i, e := range elems {
		if m := systemdPod.FindStringSubmatch(e); m != nil {
			uid := strings.ReplaceAll(m[3], "_", "-")
			if !podUID.MatchString(uid) || !anchored(elems[:i], sliceChain(m[1]), relative) {
				return PodCgroup{}, false
			}
			p := PodCgroup{PodUID: uid, QOSClass: qosOf[m[2]]}
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
		if m := cgroupfsPod.FindStringSubmatch(e); m != nil {
			qos, ok := cgroupfsQOS(elems[:i], relative)
			if !ok || !podUID.MatchString(m[1]) {
				return PodCgroup{}, false
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

// sliceChain returns the slices that systemd nests the slice named
// parent+".slice" in, from the root down, itself last: "a-b" is
// ["a.slice", "a-b.slice"].
func sliceChain(parent string) []string {
	parts := strings.Split(parent, "-")
	chain := make([]string, len(parts))
	for i := range parts {
		chain[i] = strings.Join(parts[:i+1], "-") + ".slice"
	}
	return chain
}

// anchored reports whether parents, the elements of a path above a pod's
// cgroup, are chain (the kubelet's cgroups above it, from the root), or
// for a path relative to a cgroup namespace, its last elements.
func anchored(parents, chain []string, relative bool) bool {
	if relative {
		return len(parents) <= len(chain) && slices.Equal(parents, chain[len(chain)-len(parents):])
	}
	return slices.Equal(parents, chain)
}

// cgroupfsQOS returns the QoS class of a pod whose cgroup's parents are,
// under the cgroupfs driver, <root>/kubepods for Guaranteed,
// <root>/kubepods/burstable or <root>/kubepods/besteffort, for a root of
// cgroupfsRoots. Relative to a cgroup namespace, the parents are the last
// of these elements; none (the QoS class unknown), or a QoS directory, or
// kubepods and what follows.
func cgroupfsQOS(parents []string, relative bool) (string, bool) {
	for _, root := range cgroupfsRoots {
		for _, qos := range []string{"", "burstable", "besteffort"} {
			chain := append(slices.Clip(root), "kubepods")
			if qos != "" {
				chain = append(chain, qos)
			}
			if !anchored(parents, chain, relative) {
				continue
			}
			if len(parents) == 0 {
				return "", true
			}
			return qosOf[qos], true
		}
	}
	return "", false
}
