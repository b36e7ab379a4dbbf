package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// UprobeAttach attaches a uprobe or uretprobe program to a function in an
// executable or library, on the node or inside a container.
type UprobeAttach struct {
	// Target is the absolute path of the executable or library: on the
	// node, or inside the container of ContainerPID. Required unless
	// Library names it.
	Target string `json:"target,omitempty"`
	// Library, with ContainerPID and instead of Target, names a library
	// the container's process has mapped, by file name or by name before
	// ".so" ("libc" finds libc.so.6): found in /proc/<pid>/maps.
	Library string `json:"library,omitempty"`
	// ContainerPID, if not 0, is a process of the container the target is
	// in: Target (or Library) is resolved through the process's root,
	// /proc/<pid>/root, as the container sees its files. PID 0 then
	// defaults to this process.
	ContainerPID int `json:"containerPID,omitempty"`
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
	case a.ContainerPID < 0:
		return fmt.Errorf("uprobe container pid %d: %w", a.ContainerPID, ErrInvalid)
	case a.Library != "" && a.ContainerPID == 0:
		return fmt.Errorf("uprobe library %q: give the container pid whose maps name it: %w", a.Library, ErrInvalid)
	case a.Library != "" && a.Target != "":
		return fmt.Errorf("uprobe library %q and target %q: give one: %w", a.Library, a.Target, ErrInvalid)
	case a.Library != "" && (strings.ContainsAny(a.Library, "/\x00") || len(a.Library) > 255):
		return fmt.Errorf("uprobe library %.64q: a file name, not a path: %w", a.Library, ErrInvalid)
	case a.Library != "":
		if a.Function == "" && a.Offset == 0 {
			return fmt.Errorf("uprobe on library %s: give a function or an offset: %w", a.Library, ErrInvalid)
		}
		return nil
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

func (a UprobeAttach) complete(*ebpf.ProgramSpec) (AttachSpec, error) {
	if a.ContainerPID != 0 && a.PID == 0 {
		a.PID = a.ContainerPID
	}
	return a, nil
}

// hostPath returns where the target is on the node: Target itself, or
// the file (Target or Library) inside the container of ContainerPID
// through the process's root.
func (a UprobeAttach) hostPath() (string, error) {
	if a.ContainerPID == 0 {
		return a.Target, nil
	}
	file := a.Target
	if a.Library != "" {
		var err error
		if file, err = findLibrary(a.ContainerPID, a.Library); err != nil {
			return "", fmt.Errorf("uprobe: %w", err)
		}
	}
	return containerPath(a.ContainerPID, file), nil
}

func (a UprobeAttach) resolve(k progtype.Kind) (target, error) {
	host, err := a.hostPath()
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(host)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("uprobe target %s: %w", host, ErrHookNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("uprobe target %s: %w", host, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("uprobe target %s: not a regular file: %w", host, ErrInvalid)
	}
	if a.PID != 0 {
		if err := unix.Kill(a.PID, 0); errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("uprobe pid %d: no such process: %w", a.PID, ErrHookNotFound)
		}
	}
	return &uprobeTarget{spec: a, path: host, ret: k == progtype.Uretprobe}, nil
}

type uprobeTarget struct {
	spec UprobeAttach
	path string // the target on the node
	ret  bool
}

func (t *uprobeTarget) hook() string {
	kind := "uprobe/"
	if t.ret {
		kind = "uretprobe/"
	}
	return kind + t.path + ":" + t.spec.Function + "+" + strconv.FormatUint(t.spec.Offset, 10) + "/pid=" + strconv.Itoa(t.spec.PID)
}

func (t *uprobeTarget) attach(prog *ebpf.Program) (*attachment, error) {
	ex, err := link.OpenExecutable(t.path)
	if err != nil {
		return nil, fmt.Errorf("uprobe target %s: %w", t.path, kernelError(err))
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
		return nil, fmt.Errorf("uprobe target %s: symbol %s: %w", t.path, t.spec.Function, ErrHookNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("uprobe on %s: %w", t.path, attachError(err))
	}
	return &attachment{link: l}, nil
}
