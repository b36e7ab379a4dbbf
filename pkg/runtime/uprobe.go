package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// UprobeAttach attaches a uprobe or uretprobe program to a function in an
// executable or library.
type UprobeAttach struct {
	// Target is the absolute path of the executable or library. Required.
	Target string `json:"target"`
	// Function is the symbol to probe. With it, Offset is relative to the
	// symbol; without it, Offset is an address in the file.
	Function string `json:"function,omitempty"`
	// Offset: see Function.
	Offset uint64 `json:"offset,omitempty"`
	// PID, if not 0, limits the probe to one process.
	PID int `json:"pid,omitempty"`
}

// Kinds returns uprobe and uretprobe.
func (UprobeAttach) Kinds() []progtype.Kind {
	return []progtype.Kind{progtype.Uprobe, progtype.Uretprobe}
}

func (a UprobeAttach) validate() error {
	switch {
	case a.Target == "":
		return fmt.Errorf("uprobe: missing target binary: %w", ErrInvalid)
	case !filepath.IsAbs(a.Target):
		return fmt.Errorf("uprobe target %q: not an absolute path: %w", a.Target, ErrInvalid)
	case a.Function == "" && a.Offset == 0:
		return fmt.Errorf("uprobe on %s: give a function or an offset: %w", a.Target, ErrInvalid)
	case a.PID < 0:
		return fmt.Errorf("uprobe pid %d: %w", a.PID, ErrInvalid)
	}
	return nil
}

func (a UprobeAttach) complete(*ebpf.ProgramSpec) (AttachSpec, error) { return a, nil }

func (a UprobeAttach) resolve(k progtype.Kind) (target, error) {
	st, err := os.Stat(a.Target)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("uprobe target %s: %w", a.Target, ErrHookNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("uprobe target %s: %w", a.Target, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("uprobe target %s: not a regular file: %w", a.Target, ErrInvalid)
	}
	if a.PID != 0 {
		if err := unix.Kill(a.PID, 0); errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("uprobe pid %d: no such process: %w", a.PID, ErrHookNotFound)
		}
	}
	return &uprobeTarget{spec: a, ret: k == progtype.Uretprobe}, nil
}

type uprobeTarget struct {
	spec UprobeAttach
	ret  bool
}

func (t *uprobeTarget) hook() string {
	kind := "uprobe/"
	if t.ret {
		kind = "uretprobe/"
	}
	return kind + t.spec.Target + ":" + t.spec.Function + "+" + strconv.FormatUint(t.spec.Offset, 10) + "/pid=" + strconv.Itoa(t.spec.PID)
}

func (t *uprobeTarget) attach(prog *ebpf.Program) (*attachment, error) {
	ex, err := link.OpenExecutable(t.spec.Target)
	if err != nil {
		return nil, fmt.Errorf("uprobe target %s: %w", t.spec.Target, kernelError(err))
	}
	opts := &link.UprobeOptions{PID: t.spec.PID, Offset: t.spec.Offset}
	if t.spec.Function == "" {
		opts = &link.UprobeOptions{PID: t.spec.PID, Address: t.spec.Offset}
	}
	var l link.Link
	if t.ret {
		l, err = ex.Uretprobe(t.spec.Function, prog, opts)
	} else {
		l, err = ex.Uprobe(t.spec.Function, prog, opts)
	}
	if errors.Is(err, link.ErrNoSymbol) {
		return nil, fmt.Errorf("uprobe target %s: symbol %s: %w", t.spec.Target, t.spec.Function, ErrHookNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("uprobe on %s: %w", t.spec.Target, attachError(err))
	}
	return &attachment{link: l}, nil
}
