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
		back, err := inside(target, path, fn)
		if back {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// inside runs fn on the calling thread, locked, after entering target, and
// returns whether the thread is back in its own namespace. Every handle it
// opens is closed before it returns, so none outlives Do.
func inside(target netns.NsHandle, path string, fn func() error) (back bool, err error) {
	origin, err := netns.Get()
	if err != nil {
		return true, fmt.Errorf("current netns: %w", err)
	}
	defer origin.Close()
	if err := netns.Set(target); err != nil {
		return true, fmt.Errorf("enter netns %s: %w", path, err)
	}
	ferr := fn()
	if err := netns.Set(origin); err != nil {
		return false, errors.Join(ferr, fmt.Errorf("leave netns %s: %w", path, err))
	}
	return true, ferr
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
