package runtime

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// TCXAttach attaches a tcx program to a network interface with a TCX link,
// the kernel's native multi-program TC hook (Linux 6.6). Each program is a
// link of its own, placed by priority among bpfd's other tcx programs on the
// hook (before the first that runs after it, with the kernel's anchors);
// the kernel's return values decide whether the next one runs (TCX_NEXT).
type TCXAttach struct {
	// Interface is the interface's name. Required.
	Interface string `json:"interface"`
	// Netns is the path of the interface's network namespace; empty is
	// bpfd's own.
	Netns string `json:"netns,omitempty"`
	// Direction is ingress or egress. Required.
	Direction Direction `json:"direction"`
	// Priority orders bpfd's programs on the hook: 1-1000, lower first; 0
	// means DefaultPriority. Equal priorities run in the order they were
	// loaded.
	Priority int `json:"priority,omitempty"`
}

// Kinds returns tcx.
func (TCXAttach) Kinds() []progtype.Kind { return []progtype.Kind{progtype.TCX} }

func (a TCXAttach) validate() error {
	if err := checkInterfaceName(a.Interface); err != nil {
		return err
	}
	if err := a.Direction.validate(); err != nil {
		return err
	}
	return checkPriority(a.Priority)
}

func (a TCXAttach) complete(*ebpf.ProgramSpec) (AttachSpec, error) {
	a.Priority = withDefaultPriority(a.Priority)
	return a, nil
}

func (a TCXAttach) attachType() ebpf.AttachType {
	if a.Direction == Egress {
		return ebpf.AttachTCXEgress
	}
	return ebpf.AttachTCXIngress
}

func (a TCXAttach) resolve(progtype.Kind) (target, error) {
	nt, err := resolveInterface(a.Interface, a.Netns)
	if err != nil {
		return nil, err
	}
	return &tcxTarget{net: nt, direction: a.Direction, attachType: a.attachType()}, nil
}

type tcxTarget struct {
	net        netTarget
	direction  Direction
	attachType ebpf.AttachType
	// anchor places the program among the hook's others; nil appends it.
	anchor link.Anchor
}

func (t *tcxTarget) hook() string { return "tcx/" + string(t.direction) + "/" + t.net.hookSuffix() }

// tcHook names the hook of the tc chain in the same direction of the same
// interface: with TCX that chain is one program on this TCX hook, and
// bpfd's tcx programs run before it.
func (t *tcxTarget) tcHook() string { return "tc/" + string(t.direction) + "/" + t.net.hookSuffix() }

func (t *tcxTarget) attach(prog *ebpf.Program) (*attachment, error) {
	var l link.Link
	err := inNetns(t.net.netns, func() error {
		var err error
		l, err = link.AttachTCX(link.TCXOptions{Interface: t.net.ifindex, Program: prog, Attach: t.attachType, Anchor: t.anchor})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("attach tcx to %s %s: %w", t.net, t.direction, attachError(err))
	}
	return &attachment{link: l}, nil
}
