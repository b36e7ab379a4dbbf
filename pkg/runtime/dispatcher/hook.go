package dispatcher

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// Hook is where a dispatcher runs its chain: an interface's XDP hook, or one
// direction of its TC hook.
type Hook struct {
	// Kind is progtype.XDP or progtype.TC.
	Kind progtype.Kind
	// Ifindex is the interface's index in its network namespace.
	Ifindex int
	// Netns is the path of the interface's network namespace (e.g.
	// /run/netns/blue); empty is the process's own.
	Netns string
	// Direction is the TC hook's direction; unused for XDP.
	Direction Direction
	// XDPFlags is the XDP attach mode (generic, native); 0 lets the kernel
	// choose. Unused for TC.
	XDPFlags link.XDPAttachFlags
}

// Direction is a TC hook's direction.
type Direction string

// The directions of TC hooks.
const (
	Ingress Direction = "ingress"
	Egress  Direction = "egress"
)

// String names the hook for errors: "xdp hook of ifindex 4 in netns
// /run/netns/blue".
func (h Hook) String() string {
	s := fmt.Sprintf("%s hook of ifindex %d", h.Kind, h.Ifindex)
	if h.Kind == progtype.TC {
		s = fmt.Sprintf("tc %s hook of ifindex %d", h.Direction, h.Ifindex)
	}
	if h.Netns != "" {
		s += " in netns " + h.Netns
	}
	return s
}

func (h Hook) check() error {
	if err := checkKind(h.Kind); err != nil {
		return err
	}
	if h.Ifindex <= 0 {
		return fmt.Errorf("%s: no interface index: %w", h, ErrInvalid)
	}
	if h.Kind == progtype.TC && h.Direction != Ingress && h.Direction != Egress {
		return fmt.Errorf("%s: direction %q (want ingress or egress): %w", h, h.Direction, ErrInvalid)
	}
	return nil
}

// TCAttach is how a TC dispatcher attaches to its hook.
type TCAttach string

const (
	// TCAttachAuto uses TCX where the kernel has it (Linux 6.6), else
	// netlink.
	TCAttachAuto TCAttach = ""
	// TCAttachTCX attaches with a TCX link, updated in place on rebuilds.
	TCAttachTCX TCAttach = "tcx"
	// TCAttachNetlink adds a clsact qdisc when missing and a cls_bpf filter
	// in direct-action mode, replaced in place (same preference and handle,
	// NLM_F_REPLACE) on rebuilds.
	TCAttachNetlink TCAttach = "netlink"
)

// attachment is a dispatcher program attached to its hook.
type attachment interface {
	// update makes the hook run prog in place of its program, atomically.
	update(prog *ebpf.Program) error
	// running returns the kernel id of the program the hook runs, 0 when
	// the hook is gone (its interface was deleted).
	running() (ebpf.ProgramID, error)
	// pin pins the attachment at path when the kernel can pin it.
	pin(path string) error
	// detach takes the program off the hook and removes the pin.
	detach() error
	// close releases the attachment's descriptors; a pinned link or a
	// filter stays.
	close() error
	// String says what it is: "xdp link 12", "tc filter".
	String() string
}

// attach attaches prog to h.
func attach(h Hook, how TCAttach, tcPriority uint16, prog *ebpf.Program) (attachment, error) {
	if h.Kind == progtype.XDP {
		var l link.Link
		err := inNetns(h.Netns, func() (err error) {
			l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: h.Ifindex, Flags: h.XDPFlags})
			return err
		})
		if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("attach: the interface runs an XDP program this dispatcher did not attach: %w", ErrConflict)
		}
		if err != nil {
			return nil, fmt.Errorf("attach: %w", err)
		}
		return &linkAttachment{link: l, what: "xdp link"}, nil
	}

	if how == TCAttachAuto || how == TCAttachTCX {
		attachType := ebpf.AttachTCXIngress
		if h.Direction == Egress {
			attachType = ebpf.AttachTCXEgress
		}
		var l link.Link
		err := inNetns(h.Netns, func() (err error) {
			l, err = link.AttachTCX(link.TCXOptions{Program: prog, Interface: h.Ifindex, Attach: attachType})
			return err
		})
		switch {
		case err == nil:
			return &linkAttachment{link: l, what: "tcx link"}, nil
		case how == TCAttachTCX || !errors.Is(err, ebpf.ErrNotSupported):
			return nil, fmt.Errorf("attach with tcx: %w", err)
		}
	}
	f := newFilter(h, tcPriority)
	if err := f.add(prog); err != nil {
		return nil, fmt.Errorf("attach: %w", err)
	}
	return f, nil
}

// linkAttachment is an XDP or TCX link.
type linkAttachment struct {
	link link.Link
	what string
	// pinned is the link's pin, if any.
	pinned string
}

func (a *linkAttachment) update(prog *ebpf.Program) error { return a.link.Update(prog) }

func (a *linkAttachment) running() (ebpf.ProgramID, error) {
	info, err := a.link.Info()
	if err != nil {
		return 0, fmt.Errorf("%s: info: %w", a, err)
	}
	ifindex := uint32(0)
	if x := info.XDP(); x != nil {
		ifindex = x.Ifindex
	} else if t := info.TCX(); t != nil {
		ifindex = t.Ifindex
	}
	if ifindex == 0 {
		return 0, nil // the interface is gone: the link is defunct
	}
	return info.Program, nil
}

func (a *linkAttachment) pin(path string) error {
	if err := a.link.Pin(path); err != nil {
		return fmt.Errorf("%s: pin: %w", a, err)
	}
	a.pinned = path
	return nil
}

func (a *linkAttachment) detach() error {
	var errs []error
	if a.pinned != "" {
		errs = append(errs, a.link.Unpin())
	}
	// With no pin left, closing the last descriptor detaches the link.
	errs = append(errs, a.link.Close())
	return errors.Join(errs...)
}

func (a *linkAttachment) close() error { return a.link.Close() }

func (a *linkAttachment) String() string {
	if info, err := a.link.Info(); err == nil {
		return fmt.Sprintf("%s %d", a.what, info.ID)
	}
	return a.what
}

// loadLinkAttachment loads the link pinned at path.
func loadLinkAttachment(path string) (*linkAttachment, error) {
	l, err := link.LoadPinnedLink(path, nil)
	if err != nil {
		return nil, err
	}
	what := "tcx link"
	if info, err := l.Info(); err == nil && info.Type == link.XDPType {
		what = "xdp link"
	}
	return &linkAttachment{link: l, what: what, pinned: path}, nil
}
