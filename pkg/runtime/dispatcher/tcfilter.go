package dispatcher

import (
	"errors"
	"fmt"

	"github.com/bpfd-dev/bpfd/pkg/runtime/internal/netnsutil"
	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DefaultTCFilterPriority is the preference of a TC dispatcher's cls_bpf
// filter unless Options say otherwise.
const DefaultTCFilterPriority = 50

// tcFilterHandle is the handle of every TC dispatcher's filter: with the
// hook's parent and the preference it identifies the filter, so a restarted
// bpfd finds it again.
const tcFilterHandle = 0xb9fd

// tcFilterName is the filter's name, as tc filter show prints it.
const tcFilterName = "bpfd-dispatcher"

// filter is a TC dispatcher attached as a cls_bpf filter in direct-action
// mode under the interface's clsact qdisc. The kernel cannot pin filters:
// it is found again by its parent, preference, handle and name.
type filter struct {
	netns    string
	ifindex  int
	parent   uint32
	priority uint16
}

func newFilter(h Hook, priority uint16) *filter {
	parent := uint32(netlink.HANDLE_MIN_INGRESS)
	if h.Direction == Egress {
		parent = netlink.HANDLE_MIN_EGRESS
	}
	return &filter{netns: h.Netns, ifindex: h.Ifindex, parent: parent, priority: priority}
}

func (f *filter) netlink(fd int) *netlink.BpfFilter {
	return &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: f.ifindex,
			Parent:    f.parent,
			Handle:    tcFilterHandle,
			Priority:  f.priority,
			Protocol:  unix.ETH_P_ALL,
		},
		Fd:           fd,
		Name:         tcFilterName,
		DirectAction: true,
	}
}

// add adds a clsact qdisc unless the interface has one, and the filter.
// The qdisc stays when the filter goes: other tools may use it.
func (f *filter) add(prog *ebpf.Program) error {
	h, err := netlinkHandle(f.netns)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := ensureClsact(h, f.ifindex); err != nil {
		return err
	}
	err = h.FilterAdd(f.netlink(prog.FD()))
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("tc filter preference %d handle %#x: exists: %w", f.priority, tcFilterHandle, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("add tc filter: %w", err)
	}
	return nil
}

// update replaces the filter's program in place: cls_bpf swaps it under
// RCU, so every packet sees the old program or the new one.
func (f *filter) update(prog *ebpf.Program) error {
	h, err := netlinkHandle(f.netns)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.FilterReplace(f.netlink(prog.FD())); err != nil {
		return fmt.Errorf("replace tc filter: %w", err)
	}
	return nil
}

// running returns the kernel id of the filter's program, 0 when the filter
// (or its qdisc, interface or namespace) is gone.
func (f *filter) running() (ebpf.ProgramID, error) {
	h, err := netlinkHandle(f.netns)
	if err != nil {
		return 0, nil // the namespace is gone
	}
	defer h.Close()
	l, err := h.LinkByIndex(f.ifindex)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return 0, nil
		}
		return 0, fmt.Errorf("interface index %d: %w", f.ifindex, err)
	}
	if ok, err := hasClsact(h, l); err != nil || !ok {
		return 0, err
	}
	filters, err := netnsutil.RetryDump(func() ([]netlink.Filter, error) { return h.FilterList(l, f.parent) })
	if err != nil {
		return 0, fmt.Errorf("list tc filters: %w", err)
	}
	for _, x := range filters {
		bf, ok := x.(*netlink.BpfFilter)
		if ok && bf.Handle == tcFilterHandle && bf.Priority == f.priority && bf.Name == tcFilterName {
			return ebpf.ProgramID(bf.Id), nil
		}
	}
	return 0, nil
}

func (f *filter) pin(string) error { return nil }

func (f *filter) detach() error {
	h, err := netlinkHandle(f.netns)
	if err != nil {
		return nil // the namespace is gone, and the filter with it
	}
	defer h.Close()
	err = h.FilterDel(f.netlink(0))
	if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENODEV) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("delete tc filter: %w", err)
	}
	return nil
}

func (f *filter) close() error { return nil }

func (f *filter) String() string {
	return fmt.Sprintf("tc filter preference %d handle %#x", f.priority, tcFilterHandle)
}

// hasClsact reports whether the interface has a clsact qdisc.
func hasClsact(h *netlink.Handle, l netlink.Link) (bool, error) {
	qdiscs, err := netnsutil.RetryDump(func() ([]netlink.Qdisc, error) { return h.QdiscList(l) })
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
	err = h.QdiscAdd(&netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	})
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add clsact qdisc: %w", err)
	}
	return nil
}
