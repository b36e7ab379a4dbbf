package runtime

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/bpfd-dev/bpfd/pkg/runtime/internal/netnsutil"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netTarget is a network interface found in its network namespace.
type netTarget struct {
	// netns is the namespace's path as requested; "" is bpfd's own.
	netns string
	// netnsIno is the namespace's inode number, which names it uniquely while
	// it exists.
	netnsIno uint64
	ifname   string
	ifindex  int
}

// String names the interface for errors and logs: "veth0" or
// "veth0 in netns /run/netns/blue".
func (t netTarget) String() string { return describeInterface(t.ifname, t.netns) }

func describeInterface(ifname, netnsPath string) string {
	if netnsPath == "" {
		return "interface " + ifname
	}
	return "interface " + ifname + " in netns " + netnsPath
}

// hookSuffix is the part of a hook name that identifies the interface.
func (t netTarget) hookSuffix() string {
	return "ifindex=" + strconv.Itoa(t.ifindex) + "/netns=" + strconv.FormatUint(t.netnsIno, 10)
}

// resolveInterface finds the interface ifname in the network namespace at
// netnsPath ("" for bpfd's own).
func resolveInterface(ifname, netnsPath string) (netTarget, error) {
	t := netTarget{netns: netnsPath, ifname: ifname}
	ino, err := netnsInode(netnsPath)
	if err != nil {
		return t, err
	}
	t.netnsIno = ino
	h, err := netlinkHandle(netnsPath)
	if err != nil {
		return t, err
	}
	defer h.Close()
	l, err := h.LinkByName(ifname)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return t, fmt.Errorf("%s: %w", t, ErrHookNotFound)
		}
		return t, fmt.Errorf("%s: %w", t, err)
	}
	t.ifindex = l.Attrs().Index
	return t, nil
}

// netnsInode returns the inode number of the network namespace at path,
// checking that path is one; "" is bpfd's own namespace.
func netnsInode(path string) (uint64, error) {
	name := path
	if path == "" {
		name = "/proc/self/ns/net"
	}
	var st unix.Stat_t
	if err := unix.Stat(name, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return 0, fmt.Errorf("netns %s: %w", path, ErrHookNotFound)
		}
		return 0, fmt.Errorf("netns %s: %w", path, err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(name, &fs); err != nil {
		return 0, fmt.Errorf("netns %s: %w", path, err)
	}
	if fs.Type != unix.NSFS_MAGIC {
		return 0, fmt.Errorf("netns %s: not a network namespace: %w", path, ErrInvalid)
	}
	return st.Ino, nil
}

// netlinkHandle opens a route netlink handle in the network namespace at
// path; "" is bpfd's own. The caller closes it.
func netlinkHandle(path string) (*netlink.Handle, error) {
	h, err := netnsutil.NetlinkHandle(path)
	return h, netnsError(err)
}

// inNetns runs fn on an OS thread that has entered the network namespace at
// path, for kernel calls that name an interface by index (XDP and TCX links);
// "" runs fn where it is.
func inNetns(path string, fn func() error) error {
	return netnsError(netnsutil.Do(path, fn))
}

// netnsError classifies a namespace that does not exist as ErrHookNotFound.
func netnsError(err error) error {
	var open *netnsutil.OpenError
	if errors.As(err, &open) && errors.Is(open.Err, os.ErrNotExist) {
		return fmt.Errorf("netns %s: %w", open.Path, ErrHookNotFound)
	}
	return err
}
