// Package netnsutil runs kernel calls in network namespaces named by path,
// for pkg/runtime and its dispatchers: netlink handles in a namespace, a
// function on a thread inside one, and netlink dumps retried when the kernel
// interrupts them.
package netnsutil

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// OpenError is a network namespace that could not be opened; Err wraps
// fs.ErrNotExist when there is none at Path.
type OpenError struct {
	Path string
	Err  error
}

func (e *OpenError) Error() string { return fmt.Sprintf("netns %s: %v", e.Path, e.Err) }
func (e *OpenError) Unwrap() error { return e.Err }

func open(path string) (netns.NsHandle, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return ns, &OpenError{Path: path, Err: err}
	}
	return ns, nil
}

// Do runs fn on an OS thread that has entered the network namespace at path,
// for kernel calls that name an interface by index; "" runs fn where it is.
// A thread that cannot return to its namespace is never reused: its
// goroutine exits still locked to it, and the Go runtime retires the thread.
func Do(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	target, err := open(path)
	if err != nil {
		return err
	}
	defer target.Close()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		origin, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("current netns: %w", err)
			return
		}
		defer origin.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("enter netns %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := netns.Set(origin); err != nil {
			done <- errors.Join(ferr, fmt.Errorf("leave netns %s: %w", path, err))
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

// NetlinkHandle opens a route netlink handle in the network namespace at
// path; "" is the process's own. Only NETLINK_ROUTE: kernels without XFRM
// refuse the default set of families. The caller closes it.
func NetlinkHandle(path string) (*netlink.Handle, error) {
	if path == "" {
		return netlink.NewHandle(unix.NETLINK_ROUTE)
	}
	ns, err := open(path)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netns %s: netlink: %w", path, err)
	}
	return h, nil
}

// RetryDump repeats a netlink dump that the kernel interrupted because what
// it listed changed meanwhile, up to five times.
func RetryDump[T any](dump func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range 5 {
		if v, err = dump(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}
