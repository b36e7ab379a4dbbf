package dispatcher

import (
	"fmt"
	"strings"
)

// Mode is how a dispatcher puts several programs on one hook.
type Mode string

const (
	// ModeAuto is not a mode but a request: ResolveMode turns it into
	// ModeFreplace where the kernel runs extension programs, else
	// ModeLinked.
	ModeAuto Mode = "auto"
	// ModeFreplace runs a dispatcher program compiled from
	// bytecode/dispatcher whose stub functions the programs replace as
	// extension programs (freplace). Each program stays a kernel program of
	// its own, with its own id and run statistics. At most
	// MaxFreplacePrograms per hook.
	ModeFreplace Mode = "freplace"
	// ModeLinked links the programs as BPF-to-BPF functions into one
	// generated program, verified and attached as one. It works on kernels
	// that refuse extension programs. At most MaxLinkedPrograms per hook.
	ModeLinked Mode = "linked"
	// ModeDirect is not a mode to ask for but how a Dispatcher runs a chain
	// of one program: the program itself, attached to the hook on its own,
	// with no dispatcher program in front of it (ChainMode). A second
	// program turns it into a chain of the Dispatcher's mode, atomically,
	// and back when one remains. The lone program's return value is the
	// hook's result: its proceed-on set takes effect once a second program
	// joins it.
	ModeDirect Mode = "direct"
)

// Limits on the programs of one hook.
const (
	// MaxFreplacePrograms is the number of stubs of the freplace dispatchers.
	MaxFreplacePrograms = 10
	// MaxLinkedPrograms bounds a linked chain. The kernel's own limits on
	// one program (256 functions, 1,000,000 verified instructions) may
	// refuse a chain of large programs sooner; the error says so.
	MaxLinkedPrograms = 64
)

// ParseMode parses a mode as a configuration file names it: auto (or
// empty), freplace or linked.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "", ModeAuto:
		return ModeAuto, nil
	case ModeFreplace, ModeLinked:
		return m, nil
	}
	return "", fmt.Errorf("dispatcher mode %q (want auto, freplace or linked): %w", s, ErrInvalid)
}

// MaxPrograms returns how many programs one hook takes in mode m.
func (m Mode) MaxPrograms() int {
	switch m {
	case ModeFreplace:
		return MaxFreplacePrograms
	case ModeDirect:
		return 1
	}
	return MaxLinkedPrograms
}

// ChainMode returns the mode a Dispatcher in mode runs a chain of n
// programs in: ModeDirect for one program (unless Options.ChainLone), else
// mode.
func ChainMode(mode Mode, n int) Mode {
	if n == 1 {
		return ModeDirect
	}
	return mode
}

// check accepts the modes a Dispatcher is configured with.
func (m Mode) check() error {
	if m != ModeFreplace && m != ModeLinked {
		return fmt.Errorf("dispatcher mode %q (want freplace or linked): %w", m, ErrInvalid)
	}
	return nil
}

// checkBuild accepts the modes a chain is built in.
func (m Mode) checkBuild() error {
	if m == ModeDirect {
		return nil
	}
	return m.check()
}

// ResolveMode returns the mode to run in when the configuration asks for
// requested: ModeAuto is ModeFreplace when ProbeFreplace succeeds, else
// ModeLinked; ModeFreplace fails with ErrUnsupported on a kernel that
// refuses extension programs; ModeLinked is itself. Call it once at start-up
// and log the result.
func ResolveMode(requested Mode) (Mode, error) {
	switch requested {
	case ModeAuto, "":
		if ProbeFreplace() == nil {
			return ModeFreplace, nil
		}
		return ModeLinked, nil
	case ModeFreplace:
		if err := ProbeFreplace(); err != nil {
			return "", fmt.Errorf("dispatcher mode freplace: %w", err)
		}
		return ModeFreplace, nil
	case ModeLinked:
		return ModeLinked, nil
	}
	return "", requested.check()
}
