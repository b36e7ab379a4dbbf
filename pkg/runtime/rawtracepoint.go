package runtime

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// RawTracepointAttach attaches a raw tracepoint program (raw_tp/NAME) or a
// BTF-enabled tracepoint program (tp_btf/NAME) to a kernel tracepoint. A
// BTF-enabled one is bound to the tracepoint when it is loaded, so a
// tracepoint the kernel's BTF does not describe fails the load; a raw one
// fails the attach.
type RawTracepointAttach struct {
	// Tracepoint is the tracepoint's name without its group, e.g.
	// "sched_switch". Empty means the one the program's ELF section names.
	Tracepoint string `json:"tracepoint"`
}

// Kinds returns raw_tracepoint and tp_btf.
func (RawTracepointAttach) Kinds() []progtype.Kind {
	return []progtype.Kind{progtype.RawTracepoint, progtype.TPBTF}
}

// maxTracepointNameLen bounds a tracepoint's name (the kernel's event names
// are far shorter).
const maxTracepointNameLen = 256

func (a RawTracepointAttach) validate() error {
	if a.Tracepoint == "" {
		return nil // complete takes the section's
	}
	if len(a.Tracepoint) > maxTracepointNameLen {
		return fmt.Errorf("raw tracepoint %.20q...: longer than %d bytes: %w", a.Tracepoint, maxTracepointNameLen, ErrInvalid)
	}
	for _, c := range a.Tracepoint {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("raw tracepoint %q: want a tracepoint name of letters, digits and '_', without its group: %w", a.Tracepoint, ErrInvalid)
		}
	}
	return nil
}

func (a RawTracepointAttach) complete(p *ebpf.ProgramSpec) (AttachSpec, error) {
	if a.Tracepoint == "" {
		if a.Tracepoint = progtype.AttachTarget(p); a.Tracepoint == "" {
			return nil, fmt.Errorf("raw tracepoint: missing name, and section %q names none: %w", p.SectionName, ErrInvalid)
		}
		if err := a.validate(); err != nil {
			return nil, err
		}
	}
	if p.Type == ebpf.Tracing {
		p.AttachTo = a.Tracepoint // bound at load
	}
	return a, nil
}

func (a RawTracepointAttach) resolve(k progtype.Kind) (target, error) {
	return &rawTracepointTarget{kind: k, name: a.Tracepoint}, nil
}

type rawTracepointTarget struct {
	kind progtype.Kind
	name string
}

func (t *rawTracepointTarget) hook() string { return string(t.kind) + "/" + t.name }

func (t *rawTracepointTarget) attach(prog *ebpf.Program) (*attachment, error) {
	var (
		l   link.Link
		err error
	)
	if t.kind == progtype.TPBTF {
		l, err = link.AttachTracing(link.TracingOptions{Program: prog})
	} else {
		l, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: t.name, Program: prog})
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s %s: %w", t.kind, t.name, ErrHookNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", t.kind, t.name, attachError(err))
	}
	return &attachment{link: l}, nil
}
