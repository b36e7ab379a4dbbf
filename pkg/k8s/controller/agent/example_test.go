package agent_test

import (
	"fmt"

	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/agent"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

func ExampleAttachPoint() {
	fmt.Println(agent.AttachPoint(&bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Tc{Tc: &bpfdv1.TcAttach{
		Interface: "eth0", Direction: bpfdv1.Direction_DIRECTION_INGRESS,
	}}}))
	// Output: eth0 ingress
}
