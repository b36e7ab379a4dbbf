package podproc_test

import (
	"fmt"
	"strconv"

	"github.com/bpfd-dev/bpfd/pkg/podproc"
)

// Scan finds the processes of the pods a node agent serves, here to name
// each pod's network namespace for an XDP attachment and a container's
// process for a uprobe.
func ExampleScan() {
	host, err := podproc.SelfNetns("/proc")
	if err != nil {
		fmt.Println(err)
		return
	}
	pods, err := podproc.Scan("/proc", []string{"0f5b2c1e-1234-4abc-8def-0123456789ab"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for uid, pod := range pods {
		if pid, ok := pod.NetnsPID(host); ok {
			fmt.Printf("pod %s: netns /proc/%d/ns/net\n", uid, pid)
		}
		if pid, ok := pod.ContainerPID("containerd://4e3a9c1b2d0f5e6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c"); ok {
			fmt.Printf("pod %s: container pid %d\n", uid, pid)
		}
	}
}

func ExamplePod_NetnsPID() {
	const host = 4026531840 // the node's namespace, from SelfNetns
	pod := podproc.Pod{UID: "0f5b2c1e-1234-4abc-8def-0123456789ab", Processes: []podproc.Process{
		{PID: 4100, Netns: host}, // CRI-O's monitor: in the pod's cgroup, in no container
		{PID: 4120, ContainerID: "4e3a9c1b2d0f5e6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c", Netns: 4026532800},
	}}
	pid, ok := pod.NetnsPID(host)
	fmt.Println("/proc/"+strconv.Itoa(pid)+"/ns/net", ok)

	hostNetwork := podproc.Pod{UID: "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", Processes: []podproc.Process{
		{PID: 5000, ContainerID: "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90", Netns: host},
	}}
	_, ok = hostNetwork.NetnsPID(host)
	fmt.Println(ok)
	// Output:
	// /proc/4120/ns/net true
	// false
}

func ExamplePod_ContainerPID() {
	pod := podproc.Pod{UID: "0f5b2c1e-1234-4abc-8def-0123456789ab", Processes: []podproc.Process{
		{PID: 4120, ContainerID: "4e3a9c1b2d0f5e6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c"},
		{PID: 4187, ContainerID: "4e3a9c1b2d0f5e6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c"},
	}}
	// As a container status names it (status.containerStatuses[].containerID).
	fmt.Println(pod.ContainerPID("containerd://4e3a9c1b2d0f5e6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c"))
	// Output: 4120 true
}

func ExampleParsePodCgroup() {
	pod, ok := podproc.ParsePodCgroup("/kubepods/burstable/pod0f5b2c1e-1234-4abc-8def-0123456789ab/" +
		"crio-4e3a9c1b2d0f5e6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c")
	fmt.Println(ok, pod.PodUID, pod.QOSClass, pod.Runtime, pod.ContainerID[:12])
	// Output: true 0f5b2c1e-1234-4abc-8def-0123456789ab Burstable cri-o 4e3a9c1b2d0f
}
