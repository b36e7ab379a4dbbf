package runtime

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// Program is a program bpfd loaded (Managed), or one List found in the
// kernel that bpfd did not load, of which only Name and Kernel are known.
type Program struct {
	// ID is bpfd's id; 0 for unmanaged programs.
	ID      ID
	Managed bool
	// Name is the program's function name in its object.
	Name string
	// Kind is how it is attached.
	Kind progtype.Kind
	// Object is the ELF object in the artifact the program came from.
	Object string
	// Attach is where it is attached, with defaults filled in.
	Attach AttachSpec
	// Hook is the program's place on an XDP, TC or TCX hook; nil for
	// other kinds.
	Hook *HookPosition
	// Metadata are the labels given at load.
	Metadata map[string]string
	// Globals are the global data overrides given at load.
	Globals map[string][]byte
	// MapOwnerID is the program whose maps this one shares (0: its own).
	MapOwnerID ID
	// Provenance is what admitted the bytecode.
	Provenance Provenance
	// LoadedBy is who asked for the load; LoadedAt when.
	LoadedBy Requester
	LoadedAt time.Time
	// Owner is who the program belongs to.
	Owner Owner
	// PinPath is the program's directory under the bpffs, <bpffs>/<id>.
	PinPath string
	// Maps are the maps the program uses, pinned under PinPath/maps.
	Maps []Map
	// Fault says what the Manager found wrong with the program, e.g. that
	// the object its hook's chain is rebuilt from does not match its digest
	// (ErrIntegrity), so that the hook keeps running its previous chain;
	// empty when nothing is.
	Fault string
	// Kernel is what the kernel reports; nil when the program cannot be
	// read. A program in a linked chain has no kernel program of its own:
	// Kernel describes the chain's one program (with this program's maps).
	Kernel *KernelInfo
}

// HookPosition is a program's place on a hook shared by several programs.
type HookPosition struct {
	// Hook names the hook, e.g. "xdp/ifindex=4/netns=4026531840".
	Hook string
	// Position is the program's 0-based place in the order the hook runs
	// bpfd's programs: by priority, then attach time, then id.
	Position int
	// Priority is the program's priority on the hook.
	Priority int
	// Mode is the dispatcher mode of the chain an XDP or TC program runs
	// in; empty for the lone program on its hook, which runs on its own,
	// and for tcx programs, which the kernel chains itself.
	Mode DispatcherMode
}

// Map is a map a program uses.
type Map struct {
	// Name is the map's name in the object (".bss", ".rodata" for globals).
	Name string
	// ID is the kernel's map id.
	ID uint32
	// PinPath is the map's pin.
	PinPath string
}

// KernelInfo is what the kernel knows of a program.
type KernelInfo struct {
	// ProgramID is the kernel's program id.
	ProgramID uint32
	// LinkIDs are the kernel's ids of the program's links (none for tc).
	LinkIDs []uint32
	// MapIDs are the kernel's ids of the maps the program uses.
	MapIDs []uint32
	// Name is the kernel's (possibly truncated) program name; Tag the
	// hash of its instructions.
	Name string
	Tag  string
	// Type is the kernel's program type, e.g. "XDP", "SchedCLS".
	Type string
	// LoadedAt is when the kernel loaded the program.
	LoadedAt time.Time
	// Stats are the run count and run time; nil when the kernel's BPF
	// statistics are off (sysctl kernel.bpf_stats_enabled).
	Stats *RunStats
}

// RunStats are a program's cumulative runs.
type RunStats struct {
	RunCount uint64
	RunTime  time.Duration
}

// describer turns records into Programs, reading once per call what all of
// them share: whether BPF statistics are on, hook orders, and for a List
// the ids of the kernel's programs.
type describer struct {
	m *Manager
	// stats says the sysctl kernel.bpf_stats_enabled is on; readStats
	// that a List reads every program's statistics all the same
	// (ListOptions.Stats).
	stats, readStats bool
	positions        map[string]map[ID]int
	// live are the kernel's program ids, read once for a List: programs
	// are then described from what the Manager knows and only statistics
	// (when on) are read per program. Nil for a Get or a Load, which read
	// the program itself.
	live map[ebpf.ProgramID]bool
	// records describes from the records alone: no kernel read, Kernel
	// nil (ListOptions.Records).
	records bool
}

func (m *Manager) describer() *describer {
	return &describer{m: m, stats: statsEnabled(), positions: map[string]map[ID]int{}}
}

// bootTime returns when the machine booted, to turn the kernel's load times
// (time since boot) into wall-clock times. It is computed once, so that a
// program's load time reads the same every time.
var bootTime = sync.OnceValue(func() time.Time {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Time{}
	}
	return time.Now().Add(-time.Duration(ts.Nano()))
})

func (d *describer) position(hook string, id ID) int {
	pos, ok := d.positions[hook]
	if !ok {
		pos = d.m.hooks.positions(hook)
		d.positions[hook] = pos
	}
	if p, ok := pos[id]; ok {
		return p
	}
	return -1
}

// describe joins a record with what the kernel reports of the program that
// runs it; prog, when not nil, is that program, open.
func (d *describer) describe(r *record, prog *ebpf.Program) Program {
	m := d.m
	p := Program{
		ID:         r.ID,
		Managed:    true,
		Name:       r.Name,
		Kind:       r.Kind,
		Object:     r.Object,
		Attach:     r.Attach,
		Metadata:   r.Metadata,
		Globals:    r.Globals,
		MapOwnerID: r.MapOwnerID,
		Provenance: r.Provenance,
		LoadedBy:   r.LoadedBy,
		LoadedAt:   r.LoadedAt,
		Owner:      r.Owner,
		PinPath:    m.programDir(r.ID),
		Fault:      m.fault(r.ID),
	}
	if len(r.Maps) > 0 {
		p.Maps = make([]Map, len(r.Maps))
		for i, mr := range r.Maps {
			p.Maps[i] = Map{Name: mr.Name, ID: mr.ID, PinPath: m.mapPin(r.ID, mr.Name)}
		}
	}
	id, mode := ebpf.ProgramID(r.ProgramID), DispatcherMode("")
	if r.Chain != nil {
		id, mode = m.chainedProgram(r)
	}
	switch r.Attach.(type) {
	case XDPAttach, TCAttach, TCXAttach:
		p.Hook = &HookPosition{Hook: r.Hook, Position: d.position(r.Hook, r.ID), Priority: hookPriority(r.Attach)}
		if mode != dispatcher.ModeDirect {
			p.Hook.Mode = mode
		}
	}
	if id != 0 && !d.records {
		p.Kernel, mode = d.kernelInfo(r, id, mode, prog)
	}
	linked := mode == dispatcher.ModeLinked
	if p.Kernel == nil {
		if d.records {
			return p
		}
		m.log.Debug("no kernel program", "program_id", r.ID, "kernel_program_id", id)
		return p
	}
	if r.LinkID != 0 {
		p.Kernel.LinkIDs = []uint32{r.LinkID}
	}
	if linked {
		p.Kernel.MapIDs = nil
		for _, mr := range r.Maps {
			p.Kernel.MapIDs = append(p.Kernel.MapIDs, mr.ID)
		}
	}
	return p
}

// chainRereads bounds how often describe follows a chain rebuilt while it
// read the chain's program: each rebuild frees the program it replaced.
const chainRereads = 8

// kernelInfo reads what the kernel reports of id, the program that runs r
// in mode; prog, when not nil, is that program, open. A hook's chain
// rebuilt meanwhile freed the program it ran: the chain's new program is
// read instead, as often as chainRereads. Nil when the kernel program is
// gone: List and Get tell a program unloaded meanwhile from one whose
// kernel program is missing.
func (d *describer) kernelInfo(r *record, id ebpf.ProgramID, mode DispatcherMode, prog *ebpf.Program) (*KernelInfo, DispatcherMode) {
	for range chainRereads {
		var k *KernelInfo
		if d.live != nil && !d.live[id] {
			// Not among the programs the List walked: gone, or the chain
			// of its hook was rebuilt since. Opening it by id tells which.
			k, _ = d.m.kernel.kernelInfo(id, nil, true, d.stats)
		} else {
			k, _ = d.m.kernel.kernelInfo(id, prog, d.live == nil || d.stats || d.readStats, d.stats)
		}
		if k != nil || r.Chain == nil || prog != nil {
			return k, mode
		}
		next, nextMode := d.m.chainedProgram(r)
		if next == id || next == 0 {
			return nil, mode
		}
		id, mode = next, nextMode
	}
	return nil, mode
}

// chainedProgram returns the kernel program that runs r, a program of an
// XDP or TC hook's chain, and the mode of the chain: as the hook runs it
// now, which the record follows only once the load or unload that changed
// it commits (a lone program that a second one joined runs in a chain
// before its record says so). The hook's state holds that program open. A
// program the chain does not run (yet) is as its record says.
func (m *Manager) chainedProgram(r *record) (ebpf.ProgramID, DispatcherMode) {
	st := m.hooks.state(r.Hook).chainState()
	if i := slices.IndexFunc(st.Slots, func(s dispatcher.Slot) bool { return s.ID == uint64(r.ID) }); i >= 0 {
		return st.Slots[i].ProgramID, st.Mode
	}
	if r.Chain.Mode == dispatcher.ModeLinked {
		// A program in a linked chain runs as part of the chain's one
		// program.
		return st.ProgramID, r.Chain.Mode
	}
	return ebpf.ProgramID(r.ProgramID), r.Chain.Mode
}

func sortMaps(maps []mapRecord) {
	slices.SortFunc(maps, func(a, b mapRecord) int { return strings.Compare(a.Name, b.Name) })
}
