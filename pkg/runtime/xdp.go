package runtime

import (
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// XDPAttach attaches an xdp program to a network interface. Several programs
// share an interface: they run one after the other, by priority, in the
// chain of the interface's XDP dispatcher (see docs/multi-program.md).
type XDPAttach struct {
	// Interface is the interface's name. Required.
	Interface string `json:"interface"`
	// Netns is the path of the interface's network namespace (e.g.
	// /run/netns/blue or /proc/PID/ns/net); empty is bpfd's own.
	Netns string `json:"netns,omitempty"`
	// Mode is the XDP mode; empty lets the kernel choose (native where the
	// driver supports it, else generic). The programs on one interface
	// share the mode of the first.
	Mode XDPMode `json:"mode,omitempty"`
	// Priority orders programs sharing the interface: 1-1000, lower first;
	// 0 means DefaultPriority. Equal priorities run in the order they were
	// loaded.
	Priority int `json:"priority,omitempty"`
	// ProceedOn names the return values after which the next program on
	// the interface runs: aborted, drop, pass, tx, redirect,
	// dispatcher_return. Any other return value is the interface's verdict.
	// None means pass and dispatcher_return.
	ProceedOn []string `json:"proceedOn,omitempty"`
}

// XDPMode is the way an XDP program is attached to its interface.
type XDPMode string

// The XDP modes.
const (
	XDPModeDefault XDPMode = ""
	XDPModeGeneric XDPMode = "generic"
	XDPModeNative  XDPMode = "native"
	XDPModeOffload XDPMode = "offload"
)

func (m XDPMode) flags() (link.XDPAttachFlags, error) {
	switch m {
	case XDPModeDefault:
		return 0, nil
	case XDPModeGeneric:
		return link.XDPGenericMode, nil
	case XDPModeNative:
		return link.XDPDriverMode, nil
	case XDPModeOffload:
		return link.XDPOffloadMode, nil
	}
	return 0, fmt.Errorf("xdp mode %q (want generic, native or offload): %w", string(m), ErrInvalid)
}

// Kinds returns xdp.
func (XDPAttach) Kinds() []progtype.Kind { return []progtype.Kind{progtype.XDP} }

func (a XDPAttach) validate() error {
	if err := checkInterfaceName(a.Interface); err != nil {
		return err
	}
	if _, err := a.Mode.flags(); err != nil {
		return err
	}
	if _, err := proceedOn(progtype.XDP, a.ProceedOn); err != nil {
		return err
	}
	return checkPriority(a.Priority)
}

func (a XDPAttach) complete(*ebpf.ProgramSpec) (AttachSpec, error) {
	a.Priority = withDefaultPriority(a.Priority)
	a.ProceedOn = canonicalProceedOn(progtype.XDP, a.ProceedOn)
	return a, nil
}

func (a XDPAttach) resolve(progtype.Kind) (target, error) {
	nt, err := resolveInterface(a.Interface, a.Netns)
	if err != nil {
		return nil, err
	}
	flags, _ := a.Mode.flags()
	return &xdpTarget{net: nt, flags: flags}, nil
}

type xdpTarget struct {
	net   netTarget
	flags link.XDPAttachFlags
}

func (t *xdpTarget) hook() string { return "xdp/" + t.net.hookSuffix() }

func (t *xdpTarget) chainHook() dispatcher.Hook {
	return dispatcher.Hook{Kind: progtype.XDP, Ifindex: t.net.ifindex, Netns: t.net.netns, XDPFlags: t.flags}
}

func (t *xdpTarget) String() string { return t.net.String() }

// attachedID describes the XDP program the kernel reports on the interface.
func (t *xdpTarget) attachedID() string {
	h, err := netlinkHandle(t.net.netns)
	if err != nil {
		return ""
	}
	defer h.Close()
	l, err := h.LinkByIndex(t.net.ifindex)
	if err != nil || l.Attrs().Xdp == nil || l.Attrs().Xdp.ProgId == 0 {
		return ""
	}
	return fmt.Sprintf(" (kernel id %d)", l.Attrs().Xdp.ProgId)
}

// checkInterfaceName checks an interface name as the kernel would.
func checkInterfaceName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("interface: missing name: %w", ErrInvalid)
	case len(name) >= unix.IFNAMSIZ, strings.ContainsAny(name, "/ \t\n:"), name == ".", name == "..":
		return fmt.Errorf("interface %q: not a valid name: %w", name, ErrInvalid)
	}
	return nil
}
