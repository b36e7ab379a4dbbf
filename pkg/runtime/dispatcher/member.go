package dispatcher

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// Member is one program of a chain, as the caller hands it to Build or
// Dispatcher.Apply: in run order, with its proceed-on set.
type Member struct {
	// ID is the caller's identifier of the program, unique on the hook. A
	// Dispatcher keeps a member's kernel objects across rebuilds by ID: the
	// same ID must mean the same program.
	ID uint64
	// Name names the program in errors, e.g. its function name.
	Name string
	// Priority is the program's priority, MinPriority..MaxPriority. Members
	// come in run order, so priorities never decrease along a chain; the
	// dispatcher records them for display (xdp-loader status shows them).
	Priority int
	// ProceedOn is the set of return values after which the next program
	// runs.
	ProceedOn ProceedOn
	// Program is the program as ebpf.LoadCollectionSpec returns it: its
	// entry function and the functions it calls, referring to maps by name.
	// It is not modified.
	Program *ebpf.ProgramSpec
	// Maps are the live maps Program refers to, by name, global data
	// (.rodata with its overrides, .data, .bss) included: the caller creates
	// them, e.g. with ebpf.NewCollectionWithOptions on the object's spec
	// without its programs. The chain uses them as they are, so they keep
	// their contents across rebuilds; the caller closes them.
	Maps map[string]*ebpf.Map
}

// Slot is a member as it runs on its hook.
type Slot struct {
	// Position is the 0-based place in the chain.
	Position  int
	ID        uint64
	Name      string
	Priority  int
	ProceedOn ProceedOn
	// ProgramID is the kernel program that runs for the member: its
	// extension program in freplace mode; in linked mode the chain's one
	// program; in direct mode the program itself.
	ProgramID ebpf.ProgramID
}

// programType is the program type of a hook kind's programs.
var programType = map[progtype.Kind]ebpf.ProgramType{
	progtype.XDP: ebpf.XDP,
	progtype.TC:  ebpf.SchedCLS,
}

// checkMembers checks a chain's members on their own, before the kernel
// sees them.
func checkMembers(k progtype.Kind, mode Mode, members []Member) error {
	if err := checkKind(k); err != nil {
		return err
	}
	if err := mode.checkBuild(); err != nil {
		return err
	}
	if n := len(members); n > mode.MaxPrograms() {
		return fmt.Errorf("%d %s programs on one hook, %s mode takes at most %d: %w", n, k, mode, mode.MaxPrograms(), ErrTooMany)
	}
	seen := make(map[uint64]bool, len(members))
	for i := range members {
		m := &members[i]
		if m.Name == "" {
			return fmt.Errorf("program with id %d: missing name: %w", m.ID, ErrInvalid)
		}
		if seen[m.ID] {
			return fmt.Errorf("program %s: id %d appears twice in the chain: %w", m.Name, m.ID, ErrInvalid)
		}
		seen[m.ID] = true
		if err := CheckPriority(m.Priority); err != nil {
			return &MemberError{ID: m.ID, Name: m.Name, Err: err}
		}
		if i > 0 && m.Priority < members[i-1].Priority {
			return fmt.Errorf("program %s: priority %d after %s's %d: members must come in run order: %w",
				m.Name, m.Priority, members[i-1].Name, members[i-1].Priority, ErrInvalid)
		}
		if err := m.ProceedOn.check(k); err != nil {
			return &MemberError{ID: m.ID, Name: m.Name, Err: err}
		}
		if m.Program == nil || len(m.Program.Instructions) == 0 {
			return memberError(m, "no program: %w", ErrInvalid)
		}
		if want := programType[k]; m.Program.Type != want {
			return memberError(m, "program type %s, a %s hook runs %s programs: %w", m.Program.Type, k, want, ErrInvalid)
		}
	}
	return nil
}

// bindMaps points the map references of insns, a copy the caller owns, at
// m's live maps.
func bindMaps(m *Member, prog *ebpf.ProgramSpec) error {
	for i := range prog.Instructions {
		ins := &prog.Instructions[i]
		if !ins.IsLoadFromMap() || ins.Reference() == "" {
			continue
		}
		mp := m.Maps[ins.Reference()]
		if mp == nil {
			return memberError(m, "map %s: not among the program's maps: %w", ins.Reference(), ErrInvalid)
		}
		if err := ins.AssociateMap(mp); err != nil {
			return memberError(m, "map %s: %w", ins.Reference(), err)
		}
	}
	return nil
}
