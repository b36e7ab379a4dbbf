package runtime

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// FentryAttach attaches an fentry or fexit program to a kernel function
// through a BPF trampoline. The function must be in the kernel's BTF; it is
// bound when the program is loaded, so a missing one fails the load.
type FentryAttach struct {
	// Function is the kernel function, e.g. "do_unlinkat". Empty means the
	// one the program's ELF section names (fentry/do_unlinkat).
	Function string `json:"function"`
}

// Kinds returns fentry and fexit.
func (FentryAttach) Kinds() []progtype.Kind {
	return []progtype.Kind{progtype.Fentry, progtype.Fexit}
}

func (a FentryAttach) validate() error { return nil }

func (a FentryAttach) complete(p *ebpf.ProgramSpec) (AttachSpec, error) {
	if a.Function == "" {
		a.Function = progtype.AttachTarget(p)
	}
	if a.Function == "" {
		return nil, fmt.Errorf("fentry: missing function, and section %q names none: %w", p.SectionName, ErrInvalid)
	}
	p.AttachTo = a.Function
	return a, nil
}

func (a FentryAttach) resolve(k progtype.Kind) (target, error) {
	return &fentryTarget{kind: k, function: a.Function}, nil
}

type fentryTarget struct {
	kind     progtype.Kind
	function string
}

func (t *fentryTarget) hook() string { return string(t.kind) + "/" + t.function }

func (t *fentryTarget) attach(prog *ebpf.Program) (*attachment, error) {
	l, err := link.AttachTracing(link.TracingOptions{Program: prog})
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", t.kind, t.function, attachError(err))
	}
	return &attachment{link: l}, nil
}
