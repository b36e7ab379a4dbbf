package dispatcher

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// Chain is a dispatcher program built for an ordered list of members, with,
// in freplace mode, the members' extension programs attached to its stubs.
// It runs nowhere until attached: a Dispatcher builds and attaches its own
// chains; Build returns one to run with BPF_PROG_TEST_RUN.
type Chain struct {
	kind  progtype.Kind
	mode  Mode
	prog  *ebpf.Program
	slots []Slot
	// exts are slot i's extension program and links attach it (freplace).
	exts  []*ebpf.Program
	links []link.Link
	// loaded are the extension programs this build loaded, by member ID;
	// the chain closes them unless a Dispatcher took them over.
	loaded map[uint64]*ebpf.Program
	// counters are the members' counters when the chain accounts them
	// (accounting.go).
	counters *ebpf.Map
}

// BuildOptions are Build's optional settings. The zero value builds a chain
// without accounting.
type BuildOptions struct {
	// Accounting makes the chain count each member's runs and their time
	// (Chain.Stats). It costs two clock reads and a few instructions per
	// member and packet; without it the chain has no accounting
	// instructions.
	Accounting bool
}

// Build builds the chain of members, in the order given, for a hook of kind
// k (progtype.XDP or progtype.TC): the kernel verifies it, nothing is
// attached. ModeDirect takes exactly one member and loads its program as it
// is. A program the verifier rejects fails the build with a *MemberError
// naming it. The caller closes the chain.
func Build(k progtype.Kind, mode Mode, members []Member) (*Chain, error) {
	return build(k, mode, members, nil, BuildOptions{})
}

// BuildWithOptions is Build with options.
func BuildWithOptions(k progtype.Kind, mode Mode, members []Member, opts BuildOptions) (*Chain, error) {
	return build(k, mode, members, nil, opts)
}

// build is Build with the extension programs already loaded for some
// members, by ID, which freplace mode attaches instead of loading anew.
func build(k progtype.Kind, mode Mode, members []Member, extensions map[uint64]*ebpf.Program, opts BuildOptions) (_ *Chain, err error) {
	if err := checkMembers(k, mode, members); err != nil {
		return nil, err
	}
	if len(members) == 0 {
		return nil, fmt.Errorf("chain: no programs: %w", ErrInvalid)
	}
	c := &Chain{kind: k, mode: mode, loaded: map[uint64]*ebpf.Program{}}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	switch mode {
	case ModeFreplace:
		err = c.buildFreplace(members, extensions, opts.Accounting)
	case ModeDirect:
		// A lone program has no chain to account: the kernel's own
		// statistics (Stats of the program) cover it.
		err = c.buildDirect(&members[0])
	default:
		err = c.buildLinked(members, opts.Accounting)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Program returns the chain's dispatcher program. It stays the chain's: do
// not close it.
func (c *Chain) Program() *ebpf.Program { return c.prog }

// Slots returns the chain's members as they run.
func (c *Chain) Slots() []Slot { return slices.Clone(c.slots) }

// Mode returns the mode the chain was built in.
func (c *Chain) Mode() Mode { return c.mode }

// Close releases the chain's kernel objects: the program, its extension
// links, and the extension programs it loaded.
func (c *Chain) Close() error {
	var errs []error
	for _, l := range c.links {
		errs = append(errs, l.Close())
	}
	c.links = nil
	if c.prog != nil {
		errs = append(errs, c.prog.Close())
		c.prog = nil
	}
	for _, p := range c.loaded {
		errs = append(errs, p.Close())
	}
	c.loaded = nil
	if c.counters != nil {
		errs = append(errs, c.counters.Close())
		c.counters = nil
	}
	return errors.Join(errs...)
}

// commonFlags returns the load flags all members share (such as
// BPF_F_XDP_HAS_FRAGS): one dispatcher program runs them all.
func commonFlags(members []Member) (uint32, error) {
	flags := members[0].Program.Flags
	for i := range members[1:] {
		m := &members[i+1]
		if m.Program.Flags != flags {
			return 0, memberError(m, "load flags %#x differ from %s's %#x: the programs on a hook must agree (e.g. on xdp.frags): %w",
				m.Program.Flags, members[0].Name, flags, ErrInvalid)
		}
	}
	return flags, nil
}

// buildDirect loads m's program on its own, bound to its maps: the chain of
// one program that runs with no dispatcher in front of it.
func (c *Chain) buildDirect(m *Member) error {
	spec := m.Program.Copy()
	if err := bindMaps(m, spec); err != nil {
		return err
	}
	prog, err := ebpf.NewProgram(spec)
	if err != nil {
		return memberError(m, "load: %w", err)
	}
	c.prog = prog
	id, err := programID(prog)
	if err != nil {
		return err
	}
	c.slots = []Slot{{Position: 0, ID: m.ID, Name: m.Name, Priority: m.Priority, ProceedOn: m.ProceedOn, ProgramID: id}}
	return nil
}

func programID(p *ebpf.Program) (ebpf.ProgramID, error) {
	info, err := p.Info()
	if err != nil {
		return 0, fmt.Errorf("program info: %w", err)
	}
	id, _ := info.ID()
	return id, nil
}
