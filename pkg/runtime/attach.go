package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// AttachSpec says where to attach a program. The concrete types are
// XDPAttach, TCAttach, TCXAttach, TracepointAttach, KprobeAttach,
// UprobeAttach, FentryAttach, CgroupAttach and RawTracepointAttach; each attaches the program
// kinds its Kinds method returns.
type AttachSpec interface {
	// Kinds returns the program kinds this spec attaches.
	Kinds() []progtype.Kind

	// validate checks the spec on its own, without the kernel.
	validate() error
	// complete returns the spec with its defaults filled in for program p,
	// and prepares p's load-time attach fields (fentry target, cgroup
	// attach type). p is the Manager's private copy.
	complete(p *ebpf.ProgramSpec) (AttachSpec, error)
	// resolve finds the spec's hook in the kernel, for a program of kind k.
	resolve(k progtype.Kind) (target, error)
}

// target is an attach spec resolved against the kernel: the hook it names
// and the way to attach to it. A target is a linkTarget (the program gets a
// BPF link of its own) or a chainTarget (an XDP or TC hook, whose programs
// run in a chain a dispatcher builds).
type target interface {
	// hook names the attach point, e.g. "xdp/ifindex=4/netns=4026531840".
	// Operations on one hook are serialized.
	hook() string
}

// linkTarget is a hook a program attaches to with a BPF link of its own.
type linkTarget interface {
	target
	// attach attaches prog.
	attach(prog *ebpf.Program) (*attachment, error)
}

// attachment is a program attached to its hook by a BPF link.
type attachment struct {
	link link.Link
}

// release closes the attachment's descriptors. An unpinned link detaches.
func (a *attachment) release() {
	if a != nil && a.link != nil {
		a.link.Close()
	}
}

// detach removes the attachment from its hook and releases it.
func (a *attachment) detach() error {
	if a == nil {
		return nil
	}
	err := a.link.Detach()
	if errors.Is(err, link.ErrNotSupported) {
		err = nil // perf-event links detach when their last reference goes
	}
	a.link.Close()
	return err
}

// Priorities order programs that share an XDP, TC or TCX hook (lower runs
// first).
const (
	MinPriority     = dispatcher.MinPriority
	MaxPriority     = dispatcher.MaxPriority
	DefaultPriority = 500
)

func checkPriority(p int) error {
	if p != 0 && (p < MinPriority || p > MaxPriority) {
		return fmt.Errorf("priority %d: out of range %d-%d: %w", p, MinPriority, MaxPriority, ErrInvalid)
	}
	return nil
}

func withDefaultPriority(p int) int {
	if p == 0 {
		return DefaultPriority
	}
	return p
}

// Direction is the traffic direction of a TC or TCX hook.
type Direction string

// The directions.
const (
	Ingress Direction = "ingress"
	Egress  Direction = "egress"
)

func (d Direction) validate() error {
	if d != Ingress && d != Egress {
		return fmt.Errorf("direction %q (want ingress or egress): %w", d, ErrInvalid)
	}
	return nil
}

// checkFits returns an error unless spec attaches programs of kind k.
func checkFits(spec AttachSpec, k progtype.Kind) error {
	if spec == nil {
		return fmt.Errorf("attach spec: missing: %w", ErrInvalid)
	}
	if !slices.Contains(spec.Kinds(), k) {
		return fmt.Errorf("attach spec %T does not attach %s programs: %w", spec, k, ErrInvalid)
	}
	return nil
}

// decodeAttach reads an attach spec stored for a program of kind k.
func decodeAttach(k progtype.Kind, raw json.RawMessage) (AttachSpec, error) {
	var (
		spec AttachSpec
		err  error
	)
	switch k {
	case progtype.XDP:
		spec, err = decodeAs[XDPAttach](raw)
	case progtype.TC:
		spec, err = decodeAs[TCAttach](raw)
	case progtype.TCX:
		spec, err = decodeAs[TCXAttach](raw)
	case progtype.Tracepoint:
		spec, err = decodeAs[TracepointAttach](raw)
	case progtype.Kprobe, progtype.Kretprobe:
		spec, err = decodeAs[KprobeAttach](raw)
	case progtype.Uprobe, progtype.Uretprobe:
		spec, err = decodeAs[UprobeAttach](raw)
	case progtype.Fentry, progtype.Fexit:
		spec, err = decodeAs[FentryAttach](raw)
	case progtype.Cgroup:
		spec, err = decodeAs[CgroupAttach](raw)
	case progtype.RawTracepoint, progtype.TPBTF:
		spec, err = decodeAs[RawTracepointAttach](raw)
	default:
		return nil, fmt.Errorf("attach spec of kind %q: %w", k, ErrInvalid)
	}
	if err != nil {
		return nil, fmt.Errorf("attach spec of kind %s: %w", k, err)
	}
	return spec, nil
}

func decodeAs[T AttachSpec](raw json.RawMessage) (AttachSpec, error) {
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// attachError is kernelError for attaching, where E2BIG means the hook holds
// as many programs as the kernel allows (64 on a tracepoint, a cgroup hook or
// a TCX hook).
func attachError(err error) error {
	if errors.Is(err, unix.E2BIG) {
		return fmt.Errorf("the hook holds as many programs as the kernel allows (%v): %w", err, ErrConflict)
	}
	return kernelError(err)
}

// kernelError marks errors from attaching with the sentinel that fits: a
// missing target is ErrNotFound, a missing kernel feature ErrUnsupported.
func kernelError(err error) error {
	switch {
	case errors.Is(err, ebpf.ErrNotSupported):
		return classify(err, ErrUnsupported)
	case errors.Is(err, os.ErrNotExist):
		return classify(err, ErrHookNotFound)
	}
	return err
}

// hookPriority is the priority a program has on its hook: the one its
// attach spec gives on XDP, TC and TCX hooks; 0 elsewhere, where programs
// run in attach order.
func hookPriority(spec AttachSpec) int {
	switch a := spec.(type) {
	case XDPAttach:
		return a.Priority
	case TCAttach:
		return a.Priority
	case TCXAttach:
		return a.Priority
	}
	return 0
}

var (
	_ AttachSpec = XDPAttach{}
	_ AttachSpec = TCAttach{}
	_ AttachSpec = TCXAttach{}
	_ AttachSpec = TracepointAttach{}
	_ AttachSpec = KprobeAttach{}
	_ AttachSpec = UprobeAttach{}
	_ AttachSpec = FentryAttach{}
	_ AttachSpec = CgroupAttach{}
	_ AttachSpec = RawTracepointAttach{}
)
