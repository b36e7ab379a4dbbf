package v1alpha1_test

import (
	"fmt"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

func ExampleNodeFinalizer() {
	fmt.Println(v1alpha1.NodeFinalizer("worker-1"))
	// Output: nodes.bpfd.io/worker-1
}

func ExampleBpfProgramName() {
	fmt.Println(v1alpha1.BpfProgramName("xdp-counter", "worker-1"))
	// Output: xdp-counter-worker-1-040a74bf7deaab54
}
