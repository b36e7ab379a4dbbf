package podproc_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/bpfd-dev/bpfd/pkg/podproc"
)

// FuzzParsePodCgroup: a process that may create cgroups names them as it
// likes. Whatever the path, ParsePodCgroup does not panic, and what it
// reports is a pod uid and container id of the shapes the kubelet and the
// container runtimes make; and no path names a pod once it is moved below
// a user's delegated subtree or a container's cgroup, where such a process
// may create it.
func FuzzParsePodCgroup(f *testing.F) {
	for _, seed := range []string{
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f5b2c1e_1234_4abc_8def_0123456789ab.slice/cri-containerd-4e3a9c1b2d0f5e6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c.scope",
		"/kubepods/burstable/pod0f5b2c1e-1234-4abc-8def-0123456789ab/4e3a9c1b2d0f5e6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c",
		"/kubepods/pod5a0b7e8f9c1d2e3f4a5b6c7d8e9f0a1b/crio-conmon-4e3a9c1b2d0f5e6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c",
		"/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod0f5b2c1e_1234_4abc_8def_0123456789ab.slice",
		"/../../pod0f5b2c1e-1234-4abc-8def-0123456789ab/4e3a9c1b2d0f5e6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c",
		"/../../../besteffort/pod0f5b2c1e-1234-4abc-8def-0123456789ab",
		"/system.slice/containerd.service", "/", "", "//kubepods//pod/", "/kubepods/burstable/pod",
		"/user.slice/user-1000.slice/user@1000.service/kubepods-besteffort-pod0f5b2c1e_1234_4abc_8def_0123456789ab.slice",
		"/kubepods.slice/kubepods-burstable.slice/kubepods-besteffort-pod0f5b2c1e_1234_4abc_8def_0123456789ab.slice",
		"/../../kubepods-burstable.slice/kubepods-besteffort-pod0f5b2c1e_1234_4abc_8def_0123456789ab.slice",
		"/something/kubepods/pod0f5b2c1e-1234-4abc-8def-0123456789ab",
		"/a.slice/a-b.slice/a-b-kubepods.slice/a-b-kubepods-pod5a0b7e8f9c1d2e3f4a5b6c7d8e9f0a1b.slice",
	} {
		f.Add(seed)
	}
	uid := regexp.MustCompile(`^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$`)
	container := regexp.MustCompile(`^(?:[0-9a-f]{64})?$`)
	f.Fuzz(func(t *testing.T, path string) {
		p, ok := podproc.ParsePodCgroup(path)
		if !ok {
			if p != (podproc.PodCgroup{}) {
				t.Errorf("ParsePodCgroup(%q) = %+v, false", path, p)
			}
			return
		}
		for _, below := range []string{
			"/user.slice/user-1000.slice/user@1000.service",
			"/docker/" + strings.Repeat("0", 64),
			"/system.slice/docker-" + strings.Repeat("0", 64) + ".scope",
		} {
			if strings.HasPrefix(strings.TrimLeft(path, "/"), "..") {
				break
			}
			if q, ok := podproc.ParsePodCgroup(below + "/" + strings.TrimLeft(path, "/")); ok {
				t.Errorf("ParsePodCgroup(%q) names pod %s below %s", path, q.PodUID, below)
			}
		}
		if !uid.MatchString(p.PodUID) || !container.MatchString(p.ContainerID) {
			t.Errorf("ParsePodCgroup(%q) = %+v: pod uid or container id of the wrong shape", path, p)
		}
		switch p.QOSClass {
		case "Guaranteed", "Burstable", "BestEffort":
		case "":
			// Only in a path relative to a cgroup namespace.
			if !strings.HasPrefix(strings.TrimLeft(path, "/"), "..") {
				t.Errorf("ParsePodCgroup(%q): no QoS class", path)
			}
		default:
			t.Errorf("ParsePodCgroup(%q): QoS class %q", path, p.QOSClass)
		}
	})
}
