package runtime

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// KprobeAttach attaches a kprobe or kretprobe program to a kernel function.
type KprobeAttach struct {
	// Function is the kernel symbol, e.g. "do_unlinkat". Empty means the
	// one the program's ELF section names (kprobe/do_unlinkat).
	Function string `json:"function"`
	// Offset is added to the function's address; kprobes only.
	Offset uint64 `json:"offset,omitempty"`
}

// Kinds returns kprobe and kretprobe.
func (KprobeAttach) Kinds() []progtype.Kind {
	return []progtype.Kind{progtype.Kprobe, progtype.Kretprobe}
}

func (a KprobeAttach) validate() error { return nil }

func (a KprobeAttach) complete(p *ebpf.ProgramSpec) (AttachSpec, error) {
	if a.Function == "" {
		a.Function = progtype.AttachTarget(p)
	}
	if a.Function == "" {
		return nil, fmt.Errorf("kprobe: missing function, and section %q names none: %w", p.SectionName, ErrInvalid)
	}
	return a, nil
}

func (a KprobeAttach) resolve(k progtype.Kind) (target, error) {
	if k == progtype.Kretprobe && a.Offset != 0 {
		return nil, fmt.Errorf("kretprobe on %s: offset %d: a kretprobe takes no offset: %w", a.Function, a.Offset, ErrInvalid)
	}
	return &kprobeTarget{function: a.Function, offset: a.Offset, ret: k == progtype.Kretprobe}, nil
}

type kprobeTarget struct {
	function string
	offset   uint64
	ret      bool
}

func (t *kprobeTarget) hook() string {
	if t.ret {
		return "kretprobe/" + t.function
	}
	return "kprobe/" + t.function + "+" + strconv.FormatUint(t.offset, 10)
}

func (t *kprobeTarget) attach(prog *ebpf.Program) (*attachment, error) {
	if !kprobesSupported() {
		return nil, fmt.Errorf("kprobe on %s: the kernel has no kprobe PMU or kprobe_events (CONFIG_KPROBES): %w", t.function, ErrUnsupported)
	}
	var (
		l   link.Link
		err error
	)
	if t.ret {
		l, err = link.Kretprobe(t.function, prog, nil)
	} else {
		l, err = link.Kprobe(t.function, prog, &link.KprobeOptions{Offset: t.offset})
	}
	if errors.Is(err, os.ErrNotExist) {
		// The kernel refuses a symbol it does not have, or cannot probe,
		// with ENOENT; cilium/ebpf's wording names its fallbacks instead.
		return nil, fmt.Errorf("kernel function %s: not a symbol this kernel can probe: %w", t.function, ErrHookNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("kernel function %s: %w", t.function, attachError(err))
	}
	return &attachment{link: l}, nil
}

// kprobesSupported reports whether the kernel can create kprobes: through
// the kprobe PMU or, on older kernels, tracefs's kprobe_events.
func kprobesSupported() bool {
	for _, p := range []string{
		"/sys/bus/event_source/devices/kprobe/type",
		"/sys/kernel/tracing/kprobe_events",
		"/sys/kernel/debug/tracing/kprobe_events",
	} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}
