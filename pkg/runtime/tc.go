package runtime

import (
	"github.com/cilium/ebpf"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// TCAttach attaches a tc program to one direction of a network interface's
// TC hook. Several programs share a direction: they run one after the other,
// by priority, in the chain of the hook's TC dispatcher, which is attached
// with TCX where the kernel has it (Linux 6.6) and as a cls_bpf filter in
// direct-action mode under a clsact qdisc elsewhere (see
// docs/multi-program.md).
type TCAttach struct {
	// Interface is the interface's name. Required.
	Interface string `json:"interface"`
	// Netns is the path of the interface's network namespace; empty is
	// bpfd's own.
	Netns string `json:"netns,omitempty"`
	// Direction is ingress or egress. Required.
	Direction Direction `json:"direction"`
	// Priority orders programs on the hook: 1-1000, lower first; 0 means
	// DefaultPriority. Equal priorities run in the order they were loaded.
	Priority int `json:"priority,omitempty"`
	// ProceedOn names the TC actions after which the next program on the
	// hook runs: unspec, ok, reclassify, shot, pipe, stolen, queued,
	// repeat, redirect, trap, dispatcher_return. Any other action is the
	// hook's result. None means ok, pipe and dispatcher_return.
	ProceedOn []string `json:"proceedOn,omitempty"`
}

// Kinds returns tc.
func (TCAttach) Kinds() []progtype.Kind { return []progtype.Kind{progtype.TC} }

func (a TCAttach) validate() error {
	if err := checkInterfaceName(a.Interface); err != nil {
		return err
	}
	if err := a.Direction.validate(); err != nil {
		return err
	}
	if _, err := proceedOn(progtype.TC, a.ProceedOn); err != nil {
		return err
	}
	return checkPriority(a.Priority)
}

func (a TCAttach) complete(*ebpf.ProgramSpec) (AttachSpec, error) {
	a.Priority = withDefaultPriority(a.Priority)
	a.ProceedOn = canonicalProceedOn(progtype.TC, a.ProceedOn)
	return a, nil
}

func (a TCAttach) resolve(progtype.Kind) (target, error) {
	nt, err := resolveInterface(a.Interface, a.Netns)
	if err != nil {
		return nil, err
	}
	return &tcTarget{net: nt, direction: a.Direction}, nil
}

type tcTarget struct {
	net       netTarget
	direction Direction
}

func (t *tcTarget) hook() string { return "tc/" + string(t.direction) + "/" + t.net.hookSuffix() }

func (t *tcTarget) chainHook() dispatcher.Hook {
	return dispatcher.Hook{Kind: progtype.TC, Ifindex: t.net.ifindex, Netns: t.net.netns, Direction: dispatcher.Direction(t.direction)}
}

func (t *tcTarget) String() string { return t.net.String() + " " + string(t.direction) }
