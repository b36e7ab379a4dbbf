package podproc_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bpfd-dev/bpfd/pkg/podproc"
)

func TestParsePodCgroup(t *testing.T) {
	const (
		uid  = "0f5b2c1e-1234-4abc-8def-0123456789ab"
		suid = "0f5b2c1e_1234_4abc_8def_0123456789ab"
		cid  = "4e3a9c1b2d0f5e6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c"
		hash = "5a0b7e8f9c1d2e3f4a5b6c7d8e9f0a1b" // a static pod's uid

		otherSUID = "0f5b2c1e_1234_4abc_8def_00000000000b"
	)
	cases := map[string]struct {
		path string
		want *podproc.PodCgroup
	}{
		"systemd burstable containerd": {
			path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + suid + ".slice/cri-containerd-" + cid + ".scope",
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "Burstable", ContainerID: cid, Runtime: "containerd"},
		},
		"systemd besteffort cri-o": {
			path: "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + suid + ".slice/crio-" + cid + ".scope",
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "BestEffort", ContainerID: cid, Runtime: "cri-o"},
		},
		"systemd guaranteed docker": {
			path: "/kubepods.slice/kubepods-pod" + suid + ".slice/docker-" + cid + ".scope",
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "Guaranteed", ContainerID: cid, Runtime: "docker"},
		},
		"systemd cri-o monitor": {
			path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + suid + ".slice/crio-conmon-" + cid + ".scope",
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "Burstable", Runtime: "cri-o"},
		},
		"systemd pod cgroup only": {
			path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + suid + ".slice",
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "Burstable"},
		},
		"systemd nested below the container": {
			path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + suid + ".slice/cri-containerd-" + cid + ".scope/init.scope",
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "Burstable", ContainerID: cid, Runtime: "containerd"},
		},
		"systemd with a cgroup root of its own (kind)": {
			path: "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + suid + ".slice/cri-containerd-" + cid + ".scope",
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "BestEffort", ContainerID: cid, Runtime: "containerd"},
		},
		"systemd static pod": {
			path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + hash + ".slice/cri-containerd-" + cid + ".scope",
			want: &podproc.PodCgroup{PodUID: hash, QOSClass: "Burstable", ContainerID: cid, Runtime: "containerd"},
		},
		"cgroupfs burstable": {
			path: "/kubepods/burstable/pod" + uid + "/" + cid,
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "Burstable", ContainerID: cid},
		},
		"cgroupfs besteffort cri-o": {
			path: "/kubepods/besteffort/pod" + uid + "/crio-" + cid,
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "BestEffort", ContainerID: cid, Runtime: "cri-o"},
		},
		"cgroupfs guaranteed": {
			path: "/kubepods/pod" + uid + "/" + cid,
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "Guaranteed", ContainerID: cid},
		},
		"cgroupfs below a cgroup root": {
			path: "/kubelet/kubepods/burstable/pod" + uid + "/" + cid,
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "Burstable", ContainerID: cid},
		},
		"cgroupfs guaranteed below a cgroup root": {
			path: "/kubelet/kubepods/pod" + uid + "/" + cid,
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "Guaranteed", ContainerID: cid},
		},
		"systemd guaranteed with a cgroup root of its own": {
			path: "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod" + suid + ".slice",
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "Guaranteed"},
		},
		"systemd with a cgroup root two deep": {
			path: "/a.slice/a-b.slice/a-b-kubepods.slice/a-b-kubepods-burstable.slice/a-b-kubepods-burstable-pod" + suid + ".slice",
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "Burstable"},
		},
		"systemd, from a container's cgroup namespace, below a cgroup root": {
			path: "/../../../../kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + suid + ".slice",
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "BestEffort"},
		},
		"systemd, from a cgroup namespace above kubepods": {
			path: "/../kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + suid + ".slice",
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "BestEffort"},
		},
		"cgroupfs, from a cgroup namespace above kubepods": {
			path: "/../kubepods/burstable/pod" + uid,
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "Burstable"},
		},
		"cgroupfs unknown container name": {
			path: "/kubepods/burstable/pod" + uid + "/not-a-container",
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "Burstable"},
		},
		"systemd container id too short": {
			path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + suid + ".slice/cri-containerd-abc.scope",
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "Burstable"},
		},
		"systemd, read from a container's cgroup namespace": {
			path: "/../../../kubepods-besteffort.slice/kubepods-besteffort-pod" + suid + ".slice/cri-containerd-" + cid + ".scope",
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "BestEffort", ContainerID: cid, Runtime: "containerd"},
		},
		"systemd, from a container's cgroup namespace, same QoS": {
			path: "/../../kubepods-burstable-pod" + suid + ".slice/crio-" + cid + ".scope",
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "Burstable", ContainerID: cid, Runtime: "cri-o"},
		},
		"cgroupfs, from a container's cgroup namespace, same QoS": {
			path: "/../../pod" + uid + "/" + cid,
			want: &podproc.PodCgroup{PodUID: uid, ContainerID: cid},
		},
		"cgroupfs, from a container's cgroup namespace, guaranteed": {
			path: "/../../../pod" + uid + "/crio-" + cid,
			want: &podproc.PodCgroup{PodUID: uid, ContainerID: cid, Runtime: "cri-o"},
		},
		"cgroupfs, from a container's cgroup namespace, another QoS": {
			path: "/../../../besteffort/pod" + uid + "/" + cid,
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "BestEffort", ContainerID: cid},
		},
		"cgroupfs, from a container's namespace, a pod below a pod": {
			path: "/../../pod" + uid + "/" + cid + "/pod0f5b2c1e-1234-4abc-8def-00000000000b/" + cid,
			want: &podproc.PodCgroup{PodUID: uid, ContainerID: cid},
		},
		"a sibling container, from a container's namespace":   {path: "/../" + cid},
		"cgroupfs, from a container's namespace, unknown QoS": {path: "/../../premium/pod" + uid + "/" + cid},
		"cgroupfs, from a container's namespace, below a user's": {
			path: "/../../../../user.slice/user-1000.slice/pod" + uid + "/" + cid,
		},
		"cgroupfs, .. after a name":     {path: "/kubelet/../pod" + uid + "/" + cid},
		"host service":                  {path: "/system.slice/containerd.service"},
		"root":                          {path: "/"},
		"empty":                         {path: ""},
		"kubepods slice alone":          {path: "/kubepods.slice/kubepods-burstable.slice"},
		"systemd uid not a uuid":        {path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0123.slice"},
		"systemd uid with dashes":       {path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid + ".slice"},
		"cgroupfs pod outside kubepods": {path: "/user.slice/burstable/pod" + uid + "/" + cid},
		"cgroupfs uid with underscores": {path: "/kubepods/burstable/pod" + suid + "/" + cid},
		"cgroupfs unknown qos":          {path: "/kubepods/premium/pod" + uid + "/" + cid},
		"a pod-like name at the root":   {path: "/pod" + uid},
		"slice without kubepods":        {path: "/system.slice/system-burstable-pod" + suid + ".slice"},

		// Attacks: a process that may create cgroups somewhere (a user's
		// delegated subtree, a container with a writable cgroupfs) names
		// one like a pod's. A pod's cgroup is only where the kubelet puts
		// it: below the chain of parents its slice name implies, from the
		// root; under cgroupfs, below kubepods at the root or below the
		// kubelet's cgroup root.
		"systemd, a user's delegated subtree": {
			path: "/user.slice/user-1000.slice/user@1000.service/kubepods-besteffort-pod" + suid + ".slice/cri-containerd-" + cid + ".scope",
		},
		"systemd, the whole chain in a user's delegated subtree": {
			path: "/user.slice/user-1000.slice/user@1000.service/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + suid + ".slice/cri-containerd-" + cid + ".scope",
		},
		"systemd, a user's own slices": {
			path: "/user.slice/user-1000.slice/user@1000.service/app.slice/app-kubepods.slice/app-kubepods-pod" + suid + ".slice",
		},
		"systemd, the chain below a service": {
			path: "/system.slice/evil.service/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + suid + ".slice",
		},
		"systemd, the wrong QoS parent": {
			path: "/kubepods.slice/kubepods-burstable.slice/kubepods-besteffort-pod" + suid + ".slice/cri-containerd-" + cid + ".scope",
		},
		"systemd, a QoS parent missing": {path: "/kubepods.slice/kubepods-besteffort-pod" + suid + ".slice"},
		"systemd, no parents":           {path: "/kubepods-pod" + suid + ".slice"},
		"systemd, kubepods below another root": {
			path: "/kubelet.slice/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + suid + ".slice",
		},
		"systemd, a fake pod in a pod's container stays that pod's": {
			path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + suid + ".slice/cri-containerd-" + cid + ".scope" +
				"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + otherSUID + ".slice/cri-containerd-" + cid + ".scope",
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "Burstable", ContainerID: cid, Runtime: "containerd"},
		},
		"systemd, from a container's namespace, a user's subtree": {
			path: "/../../../../user.slice/user-1000.slice/user@1000.service/kubepods-besteffort-pod" + suid + ".slice",
		},
		"systemd, from a container's namespace, the wrong QoS parent": {
			path: "/../../kubepods-burstable.slice/kubepods-besteffort-pod" + suid + ".slice",
		},
		"systemd, from a container's namespace, the chain below a service": {
			path: "/../../../../system.slice/evil.service/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + suid + ".slice",
		},
		"systemd, .. after a name": {
			path: "/kubepods.slice/../kubepods.slice/kubepods-pod" + suid + ".slice",
		},
		"cgroupfs, a user's delegated subtree": {
			path: "/user.slice/user-1000.slice/user@1000.service/kubepods/burstable/pod" + uid + "/" + cid,
		},
		"cgroupfs, kubepods below something": {path: "/something/kubepods/pod" + uid + "/" + cid},
		"cgroupfs, kubepods in a container's cgroup": {
			path: "/docker/" + cid + "/kubepods/besteffort/pod" + uid + "/" + cid,
		},
		"cgroupfs, kubepods below the kubelet's root, deeper": {
			path: "/system.slice/kubelet/kubepods/pod" + uid + "/" + cid,
		},
		"cgroupfs, a fake pod in a pod's container stays that pod's": {
			path: "/kubepods/burstable/pod" + uid + "/" + cid + "/kubepods/pod0f5b2c1e-1234-4abc-8def-00000000000b/" + cid,
			want: &podproc.PodCgroup{PodUID: uid, QOSClass: "Burstable", ContainerID: cid},
		},
		"cgroupfs, from a container's namespace, kubepods below a user's": {
			path: "/../../../../user.slice/kubepods/besteffort/pod" + uid + "/" + cid,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok := podproc.ParsePodCgroup(tc.path)
			if ok != (tc.want != nil) {
				t.Fatalf("ParsePodCgroup(%q) = %+v, %v; want ok %v", tc.path, got, ok, tc.want != nil)
			}
			if tc.want == nil {
				return
			}
			if diff := cmp.Diff(*tc.want, got); diff != "" {
				t.Errorf("ParsePodCgroup(%q) (-want +got):\n%s", tc.path, diff)
			}
		})
	}
}
