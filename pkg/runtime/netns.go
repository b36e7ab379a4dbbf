package runtime

import (
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
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
			return t, fmt.Errorf("%s: %w", t, ErrNotFound)
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
			return 0, fmt.Errorf("netns %s: %w", path, ErrNotFound)
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

// netlinkHandle opens a netlink handle in the network namespace at path;
// "" is bpfd's own. The caller closes it.
func netlinkHandle(path string) (*netlink.Handle, error) {
	if path == "" {
		return netlink.NewHandle()
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("netns %s: %w", path, ErrNotFound)
		}
		return nil, fmt.Errorf("netns %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netns %s: netlink: %w", path, err)
	}
	return h, nil
}

// inNetns runs fn on an OS thread that has entered the network namespace at
// path, for kernel calls that name an interface by index (XDP and TCX links);
// "" runs fn where it is. If the thread cannot return to its namespace it is
// never reused: its goroutine exits while still locked to it.
func inNetns(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	target, err := netns.GetFromPath(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("netns %s: %w", path, ErrNotFound)
		}
		return fmt.Errorf("netns %s: %w", path, err)
	}
	defer target.Close()

	done := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		origin, err := netns.Get()
		if err != nil {
			goruntime.UnlockOSThread()
			done <- fmt.Errorf("current netns: %w", err)
			return
		}
		defer origin.Close()
		if err := netns.Set(target); err != nil {
			goruntime.UnlockOSThread()
			done <- fmt.Errorf("enter netns %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := netns.Set(origin); err != nil {
			done <- errors.Join(ferr, fmt.Errorf("leave netns %s: %w", path, err))
			return // the thread stays locked and dies with this goroutine
		}
		goruntime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

// retryDump repeats a netlink dump that the kernel interrupted because the
// listed objects changed meanwhile.
func retryDump[T any](dump func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range 5 {
		v, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}
