package main

import (
	"time"

	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// inventoryJSON is what inventory prints with --output json: every BPF
// program, map and link on the node, who holds each, and bpfd's records of
// the programs it manages (docs/bpfctl.md).
type inventoryJSON struct {
	APIVersion string    `json:"apiVersion"`
	ScannedAt  time.Time `json:"scannedAt"`
	TookNano   int64     `json:"tookNs"`
	// HolderSource is how holders were found: iterator or procfs.
	HolderSource string                 `json:"holderSource,omitempty"`
	Programs     []inventoryProgramJSON `json:"programs"`
	Maps         []inventoryMapJSON     `json:"maps,omitempty"`
	Links        []inventoryLinkJSON    `json:"links,omitempty"`
	Processes    []processJSON          `json:"processes,omitempty"`
	// Omitted counts what bpfd's bounds left out.
	Omitted  *omittedJSON `json:"omitted,omitempty"`
	Warnings []string     `json:"warnings,omitempty"`
}

// inventoryProgramJSON is a kernel program.
type inventoryProgramJSON struct {
	// ID is the kernel's program id.
	ID       uint32     `json:"id"`
	Type     string     `json:"type"`
	Name     string     `json:"name,omitempty"`
	Tag      string     `json:"tag,omitempty"`
	LoadedAt *time.Time `json:"loadedAt,omitempty"`
	// LoaderUID is the uid that loaded it, when the kernel says.
	LoaderUID            *uint32      `json:"loaderUid,omitempty"`
	BTFID                uint32       `json:"btfId,omitempty"`
	MapIDs               []uint32     `json:"mapIds,omitempty"`
	LinkIDs              []uint32     `json:"linkIds,omitempty"`
	VerifiedInstructions uint32       `json:"verifiedInstructions,omitempty"`
	Memlock              uint64       `json:"memlock,omitempty"`
	RunCount             uint64       `json:"runCount,omitempty"`
	RunTimeNano          int64        `json:"runTimeNs,omitempty"`
	Pins                 []string     `json:"pins,omitempty"`
	Holders              []holderJSON `json:"holders,omitempty"`
	// Managed are bpfd's programs this kernel program runs, as get shows
	// them: one, or the members of a linked chain; ChainHook names the hook
	// whose chain it runs when bpfd built it to run a chain.
	Managed   []programJSON `json:"managed,omitempty"`
	ChainHook string        `json:"chainHook,omitempty"`
}

// inventoryMapJSON is a kernel map.
type inventoryMapJSON struct {
	ID         uint32       `json:"id"`
	Type       string       `json:"type"`
	Name       string       `json:"name,omitempty"`
	KeySize    uint32       `json:"keySize"`
	ValueSize  uint32       `json:"valueSize"`
	MaxEntries uint32       `json:"maxEntries"`
	Flags      uint32       `json:"flags,omitempty"`
	BTFID      uint32       `json:"btfId,omitempty"`
	Memlock    uint64       `json:"memlock,omitempty"`
	Frozen     bool         `json:"frozen,omitempty"`
	ProgramIDs []uint32     `json:"programIds,omitempty"`
	Pins       []string     `json:"pins,omitempty"`
	Holders    []holderJSON `json:"holders,omitempty"`
	// ManagedIDs are bpfd's programs whose map it is.
	ManagedIDs []uint64 `json:"managedIds,omitempty"`
}

// inventoryLinkJSON is a kernel link.
type inventoryLinkJSON struct {
	ID        uint32          `json:"id"`
	Type      string          `json:"type"`
	ProgramID uint32          `json:"programId"`
	Attach    *attachmentJSON `json:"attach,omitempty"`
	Pins      []string        `json:"pins,omitempty"`
	Holders   []holderJSON    `json:"holders,omitempty"`
	// ManagedIDs are bpfd's programs it attaches.
	ManagedIDs []uint64 `json:"managedIds,omitempty"`
}

// attachmentJSON is where a link attaches: Hook names the kind of hook and
// the fields that apply to it are set (see the API's LinkAttachment).
type attachmentJSON struct {
	Hook              string `json:"hook"`
	Summary           string `json:"summary"`
	AttachType        string `json:"attachType,omitempty"`
	Ifindex           uint32 `json:"ifindex,omitempty"`
	Interface         string `json:"interface,omitempty"`
	Direction         string `json:"direction,omitempty"`
	CgroupID          uint64 `json:"cgroupId,omitempty"`
	Cgroup            string `json:"cgroup,omitempty"`
	Tracepoint        string `json:"tracepoint,omitempty"`
	Function          string `json:"function,omitempty"`
	Offset            uint64 `json:"offset,omitempty"`
	Address           uint64 `json:"address,omitempty"`
	TargetProgramID   uint32 `json:"targetProgramId,omitempty"`
	File              string `json:"file,omitempty"`
	PID               uint32 `json:"pid,omitempty"`
	Count             uint32 `json:"count,omitempty"`
	Missed            uint64 `json:"missed,omitempty"`
	PerfEventType     uint32 `json:"perfEventType,omitempty"`
	PerfEventConfig   uint64 `json:"perfEventConfig,omitempty"`
	NetnsInode        uint32 `json:"netnsInode,omitempty"`
	NetfilterFamily   uint32 `json:"netfilterFamily,omitempty"`
	NetfilterHook     uint32 `json:"netfilterHook,omitempty"`
	NetfilterPriority int32  `json:"netfilterPriority,omitempty"`
}

// holderJSON is a process holding descriptors of an object; processes
// describe it further.
type holderJSON struct {
	PID  int32   `json:"pid"`
	FDs  []int32 `json:"fds,omitempty"`
	Comm string  `json:"comm,omitempty"`
}

// processJSON is a process holding BPF objects.
type processJSON struct {
	PID    int32    `json:"pid"`
	Comm   string   `json:"comm,omitempty"`
	Exe    string   `json:"exe,omitempty"`
	Cgroup string   `json:"cgroup,omitempty"`
	Pod    *podJSON `json:"pod,omitempty"`
}

// podJSON is the pod and container a process's cgroup names.
type podJSON struct {
	UID              string `json:"uid"`
	QOSClass         string `json:"qosClass,omitempty"`
	ContainerID      string `json:"containerId,omitempty"`
	ContainerRuntime string `json:"containerRuntime,omitempty"`
}

type omittedJSON struct {
	Programs  uint32 `json:"programs,omitempty"`
	Maps      uint32 `json:"maps,omitempty"`
	Links     uint32 `json:"links,omitempty"`
	Processes uint32 `json:"processes,omitempty"`
	Holders   uint32 `json:"holders,omitempty"`
	Pins      uint32 `json:"pins,omitempty"`
	Warnings  uint32 `json:"warnings,omitempty"`
}

// newInventory converts an Inventory response; managed are bpfd's
// programs by id, from List.
func newInventory(inv *bpfdv1.InventoryResponse, managed map[uint64]*bpfdv1.Program) inventoryJSON {
	procs := processes(inv)
	out := inventoryJSON{
		APIVersion:   jsonAPIVersion,
		ScannedAt:    inv.GetScannedAt().AsTime(),
		TookNano:     inv.GetTook().AsDuration().Nanoseconds(),
		HolderSource: holderSourceName(inv.GetHolderSource()),
		Programs:     []inventoryProgramJSON{},
		Warnings:     inv.GetWarnings(),
	}
	for _, p := range inv.GetPrograms() {
		j := inventoryProgramJSON{
			ID: p.GetId(), Type: p.GetKernelType(), Name: p.GetName(), Tag: p.GetTag(), LoaderUID: p.LoaderUid,
			BTFID: p.GetBtfId(), MapIDs: p.GetMapIds(), LinkIDs: p.GetLinkIds(), VerifiedInstructions: p.GetVerifiedInstructions(),
			Memlock: p.GetMemlock(), RunCount: p.GetRunCount(), RunTimeNano: p.GetRunTime().AsDuration().Nanoseconds(),
			Pins: p.GetPins(), Holders: newHolders(p.GetHolders(), procs), ChainHook: p.GetChainHook(),
		}
		if p.GetLoadedAt() != nil {
			t := p.GetLoadedAt().AsTime()
			j.LoadedAt = &t
		}
		for _, id := range p.GetManagedIds() {
			if m := managed[id]; m != nil {
				j.Managed = append(j.Managed, newProgram(m))
			} else {
				j.Managed = append(j.Managed, programJSON{ID: id, Managed: true})
			}
		}
		out.Programs = append(out.Programs, j)
	}
	for _, m := range inv.GetMaps() {
		out.Maps = append(out.Maps, inventoryMapJSON{
			ID: m.GetId(), Type: m.GetMapType(), Name: m.GetName(), KeySize: m.GetKeySize(), ValueSize: m.GetValueSize(),
			MaxEntries: m.GetMaxEntries(), Flags: m.GetFlags(), BTFID: m.GetBtfId(), Memlock: m.GetMemlock(), Frozen: m.GetFrozen(),
			ProgramIDs: m.GetProgramIds(), Pins: m.GetPins(), Holders: newHolders(m.GetHolders(), procs), ManagedIDs: m.GetManagedIds(),
		})
	}
	for _, l := range inv.GetLinks() {
		out.Links = append(out.Links, inventoryLinkJSON{
			ID: l.GetId(), Type: l.GetLinkType(), ProgramID: l.GetProgramId(), Attach: newAttachment(l.GetAttach()),
			Pins: l.GetPins(), Holders: newHolders(l.GetHolders(), procs), ManagedIDs: l.GetManagedIds(),
		})
	}
	for _, p := range inv.GetProcesses() {
		out.Processes = append(out.Processes, *procs[p.GetPid()])
	}
	if o := inv.GetOmitted(); o != nil && (o.GetPrograms()|o.GetMaps()|o.GetLinks()|o.GetProcesses()|o.GetHolders()|o.GetPins()|o.GetWarnings()) != 0 {
		out.Omitted = &omittedJSON{Programs: o.GetPrograms(), Maps: o.GetMaps(), Links: o.GetLinks(), Processes: o.GetProcesses(),
			Holders: o.GetHolders(), Pins: o.GetPins(), Warnings: o.GetWarnings()}
	}
	return out
}

// processes returns the inventory's processes by pid.
func processes(inv *bpfdv1.InventoryResponse) map[int32]*processJSON {
	out := map[int32]*processJSON{}
	for _, p := range inv.GetProcesses() {
		j := &processJSON{PID: p.GetPid(), Comm: p.GetComm(), Exe: p.GetExe(), Cgroup: p.GetCgroup()}
		if pod := p.GetPod(); pod != nil {
			j.Pod = &podJSON{UID: pod.GetUid(), QOSClass: pod.GetQosClass(), ContainerID: pod.GetContainerId(), ContainerRuntime: pod.GetContainerRuntime()}
		}
		out[p.GetPid()] = j
	}
	return out
}

func newHolders(hs []*bpfdv1.Holder, procs map[int32]*processJSON) []holderJSON {
	var out []holderJSON
	for _, h := range hs {
		j := holderJSON{PID: h.GetPid(), FDs: h.GetFds()}
		if p := procs[h.GetPid()]; p != nil {
			j.Comm = p.Comm
		}
		out = append(out, j)
	}
	return out
}

func newAttachment(a *bpfdv1.LinkAttachment) *attachmentJSON {
	if a == nil {
		return nil
	}
	return &attachmentJSON{
		Hook: a.GetHook(), Summary: a.Summary(), AttachType: a.GetAttachType(), Ifindex: a.GetIfindex(), Interface: a.GetInterface(),
		Direction: a.GetDirection(), CgroupID: a.GetCgroupId(), Cgroup: a.GetCgroup(), Tracepoint: a.GetTracepoint(),
		Function: a.GetFunction(), Offset: a.GetOffset(), Address: a.GetAddress(), TargetProgramID: a.GetTargetProgramId(),
		File: a.GetFile(), PID: a.GetPid(), Count: a.GetCount(), Missed: a.GetMissed(), PerfEventType: a.GetPerfEventType(),
		PerfEventConfig: a.GetPerfEventConfig(), NetnsInode: a.GetNetnsInode(), NetfilterFamily: a.GetNetfilterFamily(),
		NetfilterHook: a.GetNetfilterHook(), NetfilterPriority: a.GetNetfilterPriority(),
	}
}

func holderSourceName(s bpfdv1.HolderSource) string {
	switch s {
	case bpfdv1.HolderSource_HOLDER_SOURCE_ITERATOR:
		return "iterator"
	case bpfdv1.HolderSource_HOLDER_SOURCE_PROCFS:
		return "procfs"
	case bpfdv1.HolderSource_HOLDER_SOURCE_NONE:
		return "none"
	}
	return ""
}
