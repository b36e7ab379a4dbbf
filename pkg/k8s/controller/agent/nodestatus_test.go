package agent

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

func TestNodeStatus(t *testing.T) {
	loaded := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	pods := func(uid string) (podRef, bool) {
		if uid == "uid-known" {
			return podRef{namespace: "kube-system", name: "cilium-x"}, true
		}
		return podRef{}, false
	}
	many := &bpfdv1.InventoryResponse{}
	for i := range 5 {
		many.Programs = append(many.Programs, &bpfdv1.InventoryProgram{Id: uint32(100 - i), KernelType: "Kprobe"})
	}
	many.Omitted = &bpfdv1.InventoryOmitted{Programs: 4}

	cases := map[string]struct {
		inv  *bpfdv1.InventoryResponse
		max  int
		want v1alpha1.BpfNodeStatus
	}{
		"empty node": {inv: &bpfdv1.InventoryResponse{}, max: 64, want: v1alpha1.BpfNodeStatus{}},
		"managed, chain and unmanaged": {
			inv: &bpfdv1.InventoryResponse{
				HolderSource: bpfdv1.HolderSource_HOLDER_SOURCE_ITERATOR,
				Programs: []*bpfdv1.InventoryProgram{
					{Id: 7, Name: "xdp_linked", ManagedIds: []uint64{1, 2}, ChainHook: "xdp/ifindex=2"},
					{Id: 8, Name: "tcx_counter", ManagedIds: []uint64{3}},
					{Id: 9, Name: "xdp_dispatcher", ChainHook: "xdp/ifindex=3"},
					{Id: 12, Name: "cil_from_netdev", KernelType: "SchedCLS", Tag: "0123456789abcdef", LoadedAt: timestamppb.New(loaded),
						LoaderUid: ptr.To(uint32(0)), LinkIds: []uint32{40, 41}, Pins: []string{"/sys/fs/bpf/tc/globals/x"},
						Holders: []*bpfdv1.Holder{{Pid: 300, Fds: []int32{5}}, {Pid: 301, Fds: []int32{9, 10}}, {Pid: 302}}},
					{Id: 11, Name: "pinned", KernelType: "XDP"},
				},
				Links: []*bpfdv1.InventoryLink{
					{Id: 40, ProgramId: 12, Attach: &bpfdv1.LinkAttachment{Hook: "tcx", Interface: "eth0", Direction: "ingress"}},
					{Id: 41, ProgramId: 12, Attach: &bpfdv1.LinkAttachment{Hook: "tcx", Interface: "eth0", Direction: "egress"}},
				},
				Processes: []*bpfdv1.HolderProcess{
					{Pid: 300, Comm: "cilium-agent", Pod: &bpfdv1.PodCgroup{Uid: "uid-known", ContainerId: "c1"}},
					{Pid: 301, Comm: "stranger", Pod: &bpfdv1.PodCgroup{Uid: "uid-unknown", ContainerId: "c2"}},
					{Pid: 302, Comm: "bpftool"},
				},
			},
			max: 64,
			want: v1alpha1.BpfNodeStatus{
				ManagedPrograms: 3, UnmanagedPrograms: 2, HolderSource: "iterator",
				Unmanaged: []v1alpha1.UnmanagedProgram{
					{KernelID: 12, Name: "cil_from_netdev", Type: "SchedCLS", Tag: "0123456789abcdef", LoadedAt: ptr.To(metav1.NewTime(loaded)),
						LoaderUID: ptr.To(int64(0)), AttachedTo: []string{"tcx eth0 ingress", "tcx eth0 egress"}, Pins: []string{"/sys/fs/bpf/tc/globals/x"},
						Holders: []v1alpha1.ProgramHolder{
							{PID: 300, Command: "cilium-agent", PodUID: "uid-known", PodNamespace: "kube-system", PodName: "cilium-x", ContainerID: "c1"},
							{PID: 301, Command: "stranger", PodUID: "uid-unknown", ContainerID: "c2"},
							{PID: 302, Command: "bpftool"},
						}},
					{KernelID: 11, Name: "pinned", Type: "XDP"},
				},
			},
		},
		"bounded": {
			inv: many, max: 2,
			want: v1alpha1.BpfNodeStatus{
				UnmanagedPrograms: 5, OmittedPrograms: 4 + 3,
				Unmanaged: []v1alpha1.UnmanagedProgram{{KernelID: 100, Type: "Kprobe"}, {KernelID: 99, Type: "Kprobe"}},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := nodeStatus(tc.inv, pods, tc.max)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("nodeStatus (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNodeStatusBoundsEntries(t *testing.T) {
	p := &bpfdv1.InventoryProgram{Id: 1, Name: string(make([]byte, 100))}
	inv := &bpfdv1.InventoryResponse{Programs: []*bpfdv1.InventoryProgram{p}}
	for i := range 20 {
		p.LinkIds = append(p.LinkIds, uint32(i))
		inv.Links = append(inv.Links, &bpfdv1.InventoryLink{Id: uint32(i), Attach: &bpfdv1.LinkAttachment{Hook: "kprobe", Function: fmt.Sprint("f", i)}})
		p.Pins = append(p.Pins, fmt.Sprint("/sys/fs/bpf/", i))
		p.Holders = append(p.Holders, &bpfdv1.Holder{Pid: int32(i + 1)})
	}
	got := nodeStatus(inv, func(string) (podRef, bool) { return podRef{}, false }, 64).Unmanaged[0]
	if len(got.Name) != 64 || len(got.AttachedTo) != maxAttachedTo || len(got.Pins) != maxPins || len(got.Holders) != maxHolders {
		t.Errorf("name %d bytes, %d attachments, %d pins, %d holders; want 64, %d, %d, %d",
			len(got.Name), len(got.AttachedTo), len(got.Pins), len(got.Holders), maxAttachedTo, maxPins, maxHolders)
	}
}
