package runtime

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// TCAttach attaches a tc program to a network interface's clsact qdisc as a
// cls_bpf filter in direct-action mode; bpfd adds the qdisc when missing.
// The filter's preference is the priority, so lower priorities run first.
type TCAttach struct {
	// Interface is the interface's name. Required.
	Interface string `json:"interface"`
	// Netns is the path of the interface's network namespace; empty is
	// bpfd's own.
	Netns string `json:"netns,omitempty"`
	// Direction is ingress or egress. Required.
	Direction Direction `json:"direction"`
	// Priority orders programs on the hook: 1-1000, lower first; 0 means
	// DefaultPriority.
	Priority int `json:"priority,omitempty"`
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
	return checkPriority(a.Priority)
}

func (a TCAttach) complete(*ebpf.ProgramSpec) (AttachSpec, error) {
	a.Priority = withDefaultPriority(a.Priority)
	return a, nil
}

func (a TCAttach) resolve(progtype.Kind) (target, error) {
	nt, err := resolveInterface(a.Interface, a.Netns)
	if err != nil {
		return nil, err
	}
	return &tcTarget{net: nt, direction: a.Direction, priority: a.Priority}, nil
}

type tcTarget struct {
	net       netTarget
	direction Direction
	priority  int
}

func (t *tcTarget) hook() string    { return "tc/" + string(t.direction) + "/" + t.net.hookSuffix() }
func (t *tcTarget) exclusive() bool { return false }

// filter returns the filter that attaching the program with bpfd id id adds.
// Its handle is derived from the id, so the filter can be found again after
// a crash from the record written before it was added.
func (t *tcTarget) filter(id ID) *tcFilter {
	parent := uint32(netlink.HANDLE_MIN_INGRESS)
	if t.direction == Egress {
		parent = netlink.HANDLE_MIN_EGRESS
	}
	return &tcFilter{
		Netns:    t.net.netns,
		Ifindex:  t.net.ifindex,
		Parent:   parent,
		Priority: uint16(t.priority),
		Handle:   uint32(id),
		Name:     "bpfd-" + strconv.FormatUint(uint64(id), 10),
	}
}

func (t *tcTarget) attach(prog *ebpf.Program, id ID) (*attachment, error) {
	f := t.filter(id)
	if err := f.add(prog); err != nil {
		return nil, fmt.Errorf("attach tc to %s %s: %w", t.net, t.direction, err)
	}
	return &attachment{filter: f}, nil
}

// tcFilter is a cls_bpf filter bpfd added. The kernel cannot pin filters, so
// bpfd records these fields and finds the filter again by listing.
type tcFilter struct {
	Netns    string `json:"netns,omitempty"`
	Ifindex  int    `json:"ifindex"`
	Parent   uint32 `json:"parent"`
	Priority uint16 `json:"priority"`
	Handle   uint32 `json:"handle"`
	Name     string `json:"name"`
}

func (f *tcFilter) netlink(fd int) *netlink.BpfFilter {
	return &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: f.Ifindex,
			Parent:    f.Parent,
			Handle:    f.Handle,
			Priority:  f.Priority,
			Protocol:  unix.ETH_P_ALL,
		},
		Fd:           fd,
		Name:         f.Name,
		DirectAction: true,
	}
}

// add ensures the interface has a clsact qdisc and adds the filter for prog.
// The qdisc stays when the filter goes, as with tc(8): it is shared by both
// directions and by other tools, and costs nothing without filters.
func (f *tcFilter) add(prog *ebpf.Program) error {
	h, err := netlinkHandle(f.Netns)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := ensureClsact(h, f.Ifindex); err != nil {
		return err
	}
	err = h.FilterAdd(f.netlink(prog.FD()))
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("filter priority %d handle %#x: %w", f.Priority, f.Handle, ErrConflict)
	}
	return fmt.Errorf("add filter: %w", err)
}

// remove deletes the filter. A filter already gone, with its qdisc,
// interface or namespace, counts as removed: a crash may have come before
// the filter was added.
func (f *tcFilter) remove() error {
	h, err := netlinkHandle(f.Netns)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer h.Close()
	id, err := f.lookup(h)
	if err != nil || id == 0 {
		return err
	}
	err = h.FilterDel(f.netlink(0))
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete tc filter %s: %w", f.Name, err)
	}
	return nil
}

// programID returns the kernel id of the program the filter runs, or 0 when
// the filter (or its qdisc, interface or namespace) is gone.
func (f *tcFilter) programID() (uint32, error) {
	h, err := netlinkHandle(f.Netns)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer h.Close()
	return f.lookup(h)
}

// lookup finds the filter by interface, parent, preference, handle and
// name, and returns the kernel id of its program; 0 when it is not there.
func (f *tcFilter) lookup(h *netlink.Handle) (uint32, error) {
	l, err := h.LinkByIndex(f.Ifindex)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return 0, nil
		}
		return 0, err
	}
	if ok, err := hasClsact(h, l); err != nil || !ok {
		return 0, err
	}
	filters, err := retryDump(func() ([]netlink.Filter, error) { return h.FilterList(l, f.Parent) })
	if err != nil {
		return 0, fmt.Errorf("list tc filters: %w", err)
	}
	for _, x := range filters {
		bf, ok := x.(*netlink.BpfFilter)
		if ok && bf.Handle == f.Handle && bf.Priority == f.Priority && bf.Name == f.Name {
			return uint32(bf.Id), nil
		}
	}
	return 0, nil
}

func clsact(ifindex int) *netlink.GenericQdisc {
	return &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{
			LinkIndex: ifindex,
			Handle:    netlink.MakeHandle(0xffff, 0),
			Parent:    netlink.HANDLE_CLSACT,
		},
		QdiscType: "clsact",
	}
}

// hasClsact reports whether the interface has a clsact qdisc.
func hasClsact(h *netlink.Handle, l netlink.Link) (bool, error) {
	qdiscs, err := retryDump(func() ([]netlink.Qdisc, error) { return h.QdiscList(l) })
	if err != nil {
		return false, fmt.Errorf("list qdiscs: %w", err)
	}
	for _, q := range qdiscs {
		if q.Type() == "clsact" {
			return true, nil
		}
	}
	return false, nil
}

// ensureClsact adds a clsact qdisc to the interface unless it has one.
func ensureClsact(h *netlink.Handle, ifindex int) error {
	l, err := h.LinkByIndex(ifindex)
	if err != nil {
		return fmt.Errorf("interface index %d: %w", ifindex, err)
	}
	if ok, err := hasClsact(h, l); err != nil || ok {
		return err
	}
	err = h.QdiscAdd(clsact(ifindex))
	if err != nil && !errors.Is(err, unix.EEXIST) { // EEXIST: added meanwhile
		return fmt.Errorf("add clsact qdisc: %w", err)
	}
	return nil
}
