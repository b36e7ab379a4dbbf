package k8stest

import (
	"context"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// SetUnmanaged makes Inventory report, besides the loaded programs, the
// programs, links and processes of inv as the node's programs bpfd did not
// load. Nil reports none.
func (d *Daemon) SetUnmanaged(inv *bpfdv1.InventoryResponse) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.unmanaged = proto.CloneOf(inv)
}

// Inventory reports the loaded programs as managed kernel programs (by
// their KernelInfo) and what SetUnmanaged set, by kernel id.
func (d *Daemon) Inventory(_ context.Context, req *bpfdv1.InventoryRequest) (*bpfdv1.InventoryResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls["Inventory"]++
	resp := &bpfdv1.InventoryResponse{HolderSource: bpfdv1.HolderSource_HOLDER_SOURCE_ITERATOR, ScannedAt: timestamppb.Now()}
	if d.unmanaged != nil {
		resp = proto.CloneOf(d.unmanaged)
		resp.ScannedAt = timestamppb.Now()
	}
	for _, id := range slices.Sorted(maps.Keys(d.programs)) {
		p := d.programs[id]
		k := p.GetKernel()
		resp.Programs = append(resp.Programs, &bpfdv1.InventoryProgram{
			Id: k.GetProgramId(), Name: k.GetName(), KernelType: kernelTypes[p.GetType()], MapIds: k.GetMapIds(), LinkIds: k.GetLinkIds(),
			ManagedIds: []uint64{id},
		})
	}
	slices.SortFunc(resp.Programs, func(a, b *bpfdv1.InventoryProgram) int { return int(a.GetId()) - int(b.GetId()) })
	return resp, nil
}

// kernelTypes are the kernel's program types of bpfd's kinds of program.
var kernelTypes = map[bpfdv1.ProgramType]string{
	bpfdv1.ProgramType_PROGRAM_TYPE_XDP: "XDP", bpfdv1.ProgramType_PROGRAM_TYPE_TC: "SchedCLS", bpfdv1.ProgramType_PROGRAM_TYPE_TCX: "SchedCLS",
	bpfdv1.ProgramType_PROGRAM_TYPE_TRACEPOINT: "TracePoint", bpfdv1.ProgramType_PROGRAM_TYPE_KPROBE: "Kprobe",
	bpfdv1.ProgramType_PROGRAM_TYPE_KRETPROBE: "Kprobe", bpfdv1.ProgramType_PROGRAM_TYPE_UPROBE: "Kprobe",
	bpfdv1.ProgramType_PROGRAM_TYPE_URETPROBE: "Kprobe", bpfdv1.ProgramType_PROGRAM_TYPE_FENTRY: "Tracing",
	bpfdv1.ProgramType_PROGRAM_TYPE_FEXIT: "Tracing", bpfdv1.ProgramType_PROGRAM_TYPE_CGROUP: "CGroupSKB",
	bpfdv1.ProgramType_PROGRAM_TYPE_RAW_TRACEPOINT: "RawTracepoint", bpfdv1.ProgramType_PROGRAM_TYPE_TP_BTF: "Tracing",
}
