package daemon

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bpfd-dev/bpfd/pkg/runtime"
	"github.com/bpfd-dev/bpfd/pkg/runtime/inventory"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// TestInventoryProto joins a kernel inventory with bpfd's programs: a
// linked chain's program runs two of them, a tracepoint program is one of
// its own with its link and map, the chain's dispatcher is neither, and the
// rest is nobody's.
func TestInventoryProto(t *testing.T) {
	loaded := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	scanned := loaded.Add(time.Hour)
	managed := []runtime.Program{
		{ID: 1, Managed: true, Kernel: &runtime.KernelInfo{ProgramID: 40}, Maps: []runtime.Map{{Name: "a", ID: 7}}},
		{ID: 2, Managed: true, Kernel: &runtime.KernelInfo{ProgramID: 40}, Maps: []runtime.Map{{Name: "b", ID: 8}}},
		{ID: 3, Managed: true, Kernel: &runtime.KernelInfo{ProgramID: 41, LinkIDs: []uint32{90}}, Maps: []runtime.Map{{Name: "c", ID: 9}}},
	}
	own := newBPFDObjects(managed, map[uint32]string{40: "xdp/ifindex=2"})
	inv := &inventory.Inventory{
		Programs: []inventory.Program{
			{ID: 40, Type: "XDP", Name: "xdp_linked"},
			{ID: 41, Type: "TracePoint", Name: "tp", LinkIDs: []uint32{90}, MapIDs: []uint32{9}},
			{ID: 42, Type: "SchedCLS", Name: "theirs", Tag: "00ff", LoadedAt: loaded, LoaderUID: 1000, HaveLoaderUID: true, BTFID: 12,
				Stats: &inventory.RunStats{RunCount: 3, RunTime: time.Microsecond}, Pins: []string{"/sys/fs/bpf/x"},
				Holders: []inventory.Holder{{PID: 300, FDs: []int{4, 9}}}},
		},
		Maps:  []inventory.Map{{ID: 9, Type: "Hash", Name: "c", ProgramIDs: []uint32{41}}, {ID: 10, Type: "Array"}},
		Links: []inventory.Link{{ID: 90, Type: "perf_event", ProgramID: 41, Attach: inventory.Attachment{Hook: inventory.HookTracepoint, Tracepoint: "sys_enter_openat"}}},
		Processes: []inventory.Process{{PID: 300, Comm: "agent", Exe: "/bin/agent", Cgroup: "/kubepods/pod1/c",
			Pod: &inventory.PodCgroup{PodUID: "u", QOSClass: "Guaranteed", ContainerID: "c", Runtime: "cri-o"}}},
		HolderSource: inventory.HolderSourceIterator,
		Omitted:      inventory.Omitted{Programs: 2, Pins: 1},
		Warnings:     []string{"pins under /x: boom"},
		ScannedAt:    scanned,
		Took:         time.Millisecond,
	}
	uid := uint32(1000)
	want := &pb.InventoryResponse{
		Programs: []*pb.InventoryProgram{
			{Id: 40, KernelType: "XDP", Name: "xdp_linked", ManagedIds: []uint64{1, 2}, ChainHook: "xdp/ifindex=2"},
			{Id: 41, KernelType: "TracePoint", Name: "tp", LinkIds: []uint32{90}, MapIds: []uint32{9}, ManagedIds: []uint64{3}},
			{Id: 42, KernelType: "SchedCLS", Name: "theirs", Tag: "00ff", LoadedAt: timestamppb.New(loaded), LoaderUid: &uid, BtfId: 12,
				RunCount: 3, RunTime: durationpb.New(time.Microsecond), Pins: []string{"/sys/fs/bpf/x"},
				Holders: []*pb.Holder{{Pid: 300, Fds: []int32{4, 9}}}},
		},
		Maps: []*pb.InventoryMap{
			{Id: 9, MapType: "Hash", Name: "c", ProgramIds: []uint32{41}, ManagedIds: []uint64{3}},
			{Id: 10, MapType: "Array"},
		},
		Links: []*pb.InventoryLink{{Id: 90, LinkType: "perf_event", ProgramId: 41, ManagedIds: []uint64{3},
			Attach: &pb.LinkAttachment{Hook: "tracepoint", Tracepoint: "sys_enter_openat"}}},
		Processes: []*pb.HolderProcess{{Pid: 300, Comm: "agent", Exe: "/bin/agent", Cgroup: "/kubepods/pod1/c",
			Pod: &pb.PodCgroup{Uid: "u", QosClass: "Guaranteed", ContainerId: "c", ContainerRuntime: "cri-o"}}},
		HolderSource: pb.HolderSource_HOLDER_SOURCE_ITERATOR,
		Omitted:      &pb.InventoryOmitted{Programs: 2, Pins: 1},
		Warnings:     []string{"pins under /x: boom"},
		ScannedAt:    timestamppb.New(scanned),
		Took:         durationpb.New(time.Millisecond),
	}
	if diff := cmp.Diff(want, inventoryProto(inv, own), protocmp.Transform()); diff != "" {
		t.Errorf("inventoryProto (-want +got):\n%s", diff)
	}
}

func TestInventoryOptions(t *testing.T) {
	cases := map[string]struct {
		in      *pb.InventoryRequest
		want    inventory.Options
		invalid bool
	}{
		"defaults":           {in: &pb.InventoryRequest{}, want: inventory.Options{}},
		"skips and sources":  {in: &pb.InventoryRequest{SkipMaps: true, SkipPins: true, HolderSource: pb.HolderSource_HOLDER_SOURCE_PROCFS}, want: inventory.Options{SkipMaps: true, SkipPins: true, Holders: inventory.HolderSourceProcfs}},
		"iterator":           {in: &pb.InventoryRequest{HolderSource: pb.HolderSource_HOLDER_SOURCE_ITERATOR}, want: inventory.Options{Holders: inventory.HolderSourceIterator}},
		"none":               {in: &pb.InventoryRequest{HolderSource: pb.HolderSource_HOLDER_SOURCE_NONE}, want: inventory.Options{Holders: inventory.HolderSourceNone}},
		"lower bound":        {in: &pb.InventoryRequest{MaxObjects: 10}, want: inventory.Options{MaxObjects: 10}},
		"bound above bpfd's": {in: &pb.InventoryRequest{MaxObjects: 1 << 30}, want: inventory.Options{}},
		"unknown source":     {in: &pb.InventoryRequest{HolderSource: 99}, invalid: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := inventoryOptions(tc.in)
			if tc.invalid {
				if !errors.Is(err, runtime.ErrInvalid) {
					t.Fatalf("inventoryOptions: %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
