package daemon

import (
	"context"
	"fmt"
	"slices"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bpfd-dev/bpfd/pkg/runtime"
	"github.com/bpfd-dev/bpfd/pkg/runtime/inventory"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// The node inventory (docs/inventory.md): the kernel's view from
// pkg/runtime/inventory, joined here with bpfd's own programs.

// inventoryOptions converts an Inventory request. bpfd's bounds are the
// package's defaults; a request may lower the object bound.
func inventoryOptions(in *pb.InventoryRequest) (inventory.Options, error) {
	opts := inventory.Options{SkipMaps: in.GetSkipMaps(), SkipPins: in.GetSkipPins()}
	if n := in.GetMaxObjects(); n > 0 && n < inventory.DefaultMaxObjects {
		opts.MaxObjects = int(n)
	}
	switch s := in.GetHolderSource(); s {
	case pb.HolderSource_HOLDER_SOURCE_UNSPECIFIED:
	case pb.HolderSource_HOLDER_SOURCE_ITERATOR:
		opts.Holders = inventory.HolderSourceIterator
	case pb.HolderSource_HOLDER_SOURCE_PROCFS:
		opts.Holders = inventory.HolderSourceProcfs
	case pb.HolderSource_HOLDER_SOURCE_NONE:
		opts.Holders = inventory.HolderSourceNone
	default:
		return opts, invalid("holder_source", "unknown value %d", s)
	}
	return opts, nil
}

// bpfdObjects are the kernel objects of bpfd's programs, by kernel id.
type bpfdObjects struct {
	programs map[uint32][]uint64
	maps     map[uint32][]uint64
	links    map[uint32][]uint64
	// chains names the hook of each program that runs a chain.
	chains map[uint32]string
}

// newBPFDObjects indexes the kernel objects of managed, bpfd's programs,
// and of the programs running chains.
func newBPFDObjects(managed []runtime.Program, chains map[uint32]string) bpfdObjects {
	o := bpfdObjects{programs: map[uint32][]uint64{}, maps: map[uint32][]uint64{}, links: map[uint32][]uint64{}, chains: chains}
	add := func(m map[uint32][]uint64, kid uint32, id runtime.ID) {
		if kid != 0 && !slices.Contains(m[kid], uint64(id)) {
			m[kid] = append(m[kid], uint64(id))
		}
	}
	for _, p := range managed {
		if p.Kernel != nil {
			add(o.programs, p.Kernel.ProgramID, p.ID)
			for _, l := range p.Kernel.LinkIDs {
				add(o.links, l, p.ID)
			}
		}
		for _, m := range p.Maps {
			add(o.maps, m.ID, p.ID)
		}
	}
	return o
}

// inventoryProto converts inv, marking bpfd's objects.
func inventoryProto(inv *inventory.Inventory, own bpfdObjects) *pb.InventoryResponse {
	out := &pb.InventoryResponse{
		HolderSource: holderSourceProto(inv.HolderSource),
		Warnings:     inv.Warnings,
		ScannedAt:    timestamppb.New(inv.ScannedAt),
		Took:         durationpb.New(inv.Took),
		Omitted: &pb.InventoryOmitted{
			Programs: uint32(inv.Omitted.Programs), Maps: uint32(inv.Omitted.Maps), Links: uint32(inv.Omitted.Links),
			Processes: uint32(inv.Omitted.Processes), Holders: uint32(inv.Omitted.Holders), Pins: uint32(inv.Omitted.Pins),
			Warnings: uint32(inv.Omitted.Warnings),
		},
	}
	for _, p := range inv.Programs {
		pp := &pb.InventoryProgram{
			Id: p.ID, KernelType: p.Type, Name: p.Name, Tag: p.Tag, BtfId: p.BTFID, MapIds: p.MapIDs, LinkIds: p.LinkIDs,
			VerifiedInstructions: p.VerifiedInstructions, Memlock: p.Memlock, Pins: p.Pins, Holders: holdersProto(p.Holders),
			ManagedIds: own.programs[p.ID], ChainHook: own.chains[p.ID],
		}
		if !p.LoadedAt.IsZero() {
			pp.LoadedAt = timestamppb.New(p.LoadedAt)
		}
		if p.HaveLoaderUID {
			uid := p.LoaderUID
			pp.LoaderUid = &uid
		}
		if p.Stats != nil {
			pp.RunCount, pp.RunTime = p.Stats.RunCount, durationpb.New(p.Stats.RunTime)
		}
		out.Programs = append(out.Programs, pp)
	}
	for _, m := range inv.Maps {
		out.Maps = append(out.Maps, &pb.InventoryMap{
			Id: m.ID, MapType: m.Type, Name: m.Name, KeySize: m.KeySize, ValueSize: m.ValueSize, MaxEntries: m.MaxEntries,
			Flags: m.Flags, BtfId: m.BTFID, Memlock: m.Memlock, Frozen: m.Frozen, ProgramIds: m.ProgramIDs, Pins: m.Pins,
			Holders: holdersProto(m.Holders), ManagedIds: own.maps[m.ID],
		})
	}
	for _, l := range inv.Links {
		out.Links = append(out.Links, &pb.InventoryLink{
			Id: l.ID, LinkType: l.Type, ProgramId: l.ProgramID, Attach: attachmentProto(l.Attach), Pins: l.Pins,
			Holders: holdersProto(l.Holders), ManagedIds: own.links[l.ID],
		})
	}
	for _, p := range inv.Processes {
		pp := &pb.HolderProcess{Pid: int32(p.PID), Comm: p.Comm, Exe: p.Exe, Cgroup: p.Cgroup}
		if p.Pod != nil {
			pp.Pod = &pb.PodCgroup{Uid: p.Pod.PodUID, QosClass: p.Pod.QOSClass, ContainerId: p.Pod.ContainerID, ContainerRuntime: p.Pod.Runtime}
		}
		out.Processes = append(out.Processes, pp)
	}
	return out
}

func holdersProto(hs []inventory.Holder) []*pb.Holder {
	var out []*pb.Holder
	for _, h := range hs {
		fds := make([]int32, len(h.FDs))
		for i, fd := range h.FDs {
			fds[i] = int32(fd)
		}
		out = append(out, &pb.Holder{Pid: int32(h.PID), Fds: fds})
	}
	return out
}

func attachmentProto(a inventory.Attachment) *pb.LinkAttachment {
	return &pb.LinkAttachment{
		Hook: a.Hook, AttachType: a.AttachType, Ifindex: a.Ifindex, Interface: a.Interface, Direction: a.Direction,
		CgroupId: a.CgroupID, Cgroup: a.Cgroup, Tracepoint: a.Tracepoint, Function: a.Function, Offset: a.Offset,
		Address: a.Address, TargetProgramId: a.TargetProgramID, File: a.File, Pid: a.PID, Count: a.Count, Missed: a.Missed,
		PerfEventType: a.PerfEventType, PerfEventConfig: a.PerfEventConfig, NetnsInode: a.NetnsInode,
		NetfilterFamily: a.NetfilterFamily, NetfilterHook: a.NetfilterHook, NetfilterPriority: a.NetfilterPriority,
	}
}

func holderSourceProto(s inventory.HolderSource) pb.HolderSource {
	switch s {
	case inventory.HolderSourceIterator:
		return pb.HolderSource_HOLDER_SOURCE_ITERATOR
	case inventory.HolderSourceProcfs:
		return pb.HolderSource_HOLDER_SOURCE_PROCFS
	case inventory.HolderSourceNone:
		return pb.HolderSource_HOLDER_SOURCE_NONE
	}
	return pb.HolderSource_HOLDER_SOURCE_UNSPECIFIED
}

// withoutPrograms returns ps without the programs bpfd did not load whose
// kernel id is in skip: bpfd's own inventory iterator.
func withoutPrograms(ps []runtime.Program, skip uint32) []runtime.Program {
	if skip == 0 {
		return ps
	}
	return slices.DeleteFunc(ps, func(p runtime.Program) bool { return !p.Managed && p.Kernel != nil && p.Kernel.ProgramID == skip })
}

func (s *server) Inventory(ctx context.Context, in *pb.InventoryRequest) (*pb.InventoryResponse, error) {
	opts, err := inventoryOptions(in)
	if err != nil {
		return nil, toStatus(err)
	}
	inv, err := s.scanner.Scan(ctx, opts)
	if err != nil {
		return nil, toStatus(fmt.Errorf("node inventory: %w", err))
	}
	managed, err := s.manager.List(ctx, runtime.ListOptions{})
	if err != nil {
		return nil, toStatus(err)
	}
	return inventoryProto(inv, newBPFDObjects(managed, s.manager.ChainPrograms())), nil
}

// ownProgram returns the kernel id of the program bpfd runs for itself
// that is not a program it manages: its inventory's iterator (0 while none
// is loaded). Listings of the node's programs leave it out.
func (s *server) ownProgram() uint32 {
	prog, _ := s.scanner.Own()
	return prog
}
