package inventory_test

import (
	"context"
	"fmt"

	"github.com/bpfd-dev/bpfd/pkg/runtime/inventory"
)

func ExampleParsePodCgroup() {
	pod, ok := inventory.ParsePodCgroup("/kubepods.slice/kubepods-besteffort.slice/" +
		"kubepods-besteffort-pod0f5b2c1e_1234_4abc_8def_0123456789ab.slice/" +
		"cri-containerd-4e3a9c1b2d0f5e6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c.scope")
	fmt.Println(ok, pod.PodUID, pod.QOSClass, pod.Runtime, pod.ContainerID[:12])
	// Output: true 0f5b2c1e-1234-4abc-8def-0123456789ab BestEffort containerd 4e3a9c1b2d0f
}

// Scan lists the node's programs with who holds them; a daemon keeps a
// Scanner to scan again and again without reloading its iterator.
func ExampleScan() {
	inv, err := inventory.Scan(context.Background(), inventory.Options{SkipMaps: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	pods := map[int]string{}
	for _, p := range inv.Processes {
		if p.Pod != nil {
			pods[p.PID] = p.Pod.PodUID
		}
	}
	for _, p := range inv.Programs {
		for _, h := range p.Holders {
			fmt.Printf("program %d (%s %s) held by pid %d, pod %q\n", p.ID, p.Type, p.Name, h.PID, pods[h.PID])
		}
	}
}
