package runtime

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// TracepointAttach attaches a tracepoint program to a kernel tracepoint.
type TracepointAttach struct {
	// Tracepoint is "group/name", e.g. "syscalls/sys_enter_openat". Empty
	// means the one the program's ELF section names.
	Tracepoint string `json:"tracepoint"`
}

// Kinds returns tracepoint.
func (TracepointAttach) Kinds() []progtype.Kind { return []progtype.Kind{progtype.Tracepoint} }

func (a TracepointAttach) validate() error {
	if a.Tracepoint == "" {
		return nil // complete takes the section's
	}
	group, name, ok := strings.Cut(a.Tracepoint, "/")
	if !ok || group == "" || name == "" || strings.ContainsAny(name, "/") || strings.Contains(group, "..") || strings.Contains(name, "..") {
		return fmt.Errorf("tracepoint %q: want group/name: %w", a.Tracepoint, ErrInvalid)
	}
	return nil
}

func (a TracepointAttach) complete(p *ebpf.ProgramSpec) (AttachSpec, error) {
	if a.Tracepoint == "" {
		if a.Tracepoint = progtype.AttachTarget(p); a.Tracepoint == "" {
			return nil, fmt.Errorf("tracepoint: missing group/name, and section %q names none: %w", p.SectionName, ErrInvalid)
		}
		return a, a.validate()
	}
	return a, nil
}

func (a TracepointAttach) resolve(progtype.Kind) (target, error) {
	group, name, _ := strings.Cut(a.Tracepoint, "/")
	return &tracepointTarget{group: group, name: name}, nil
}

type tracepointTarget struct{ group, name string }

func (t *tracepointTarget) hook() string { return "tracepoint/" + t.group + "/" + t.name }

func (t *tracepointTarget) attach(prog *ebpf.Program) (*attachment, error) {
	l, err := link.Tracepoint(t.group, t.name, prog, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("tracepoint %s/%s: %w", t.group, t.name, ErrHookNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("tracepoint %s/%s: %w", t.group, t.name, attachError(err))
	}
	return &attachment{link: l}, nil
}
