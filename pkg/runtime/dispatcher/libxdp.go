package dispatcher

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// libxdp (and so xdp-loader status) finds the programs of the dispatcher
// with kernel id ID on interface IFINDEX pinned in its bpffs directory as
// dispatch-IFINDEX-ID/prog<i>-prog, with their links as prog<i>-link. It
// reads their priorities and proceed-on sets from the dispatcher's conf and
// takes an exclusive flock on the directory while it works in it.

// mirror pins gen's slots in libxdp's layout, when Options ask for it and
// gen is a freplace XDP chain that does not account its members (libxdp
// expects its dispatcher to have one map, its configuration). Failing to leaves bpfd's chain as it is; it
// is logged.
func (d *Dispatcher) mirror(gen *generation) {
	if d.opts.LibxdpDir == "" || d.hook.Kind != progtype.XDP || gen.mode != ModeFreplace || gen.dir == "" || gen.counters != nil {
		return
	}
	err := d.withLibxdpLock(func() error {
		dir := d.libxdpChainDir(gen.programID)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		for i := range gen.slots {
			for _, name := range []string{slotProgramPin(i), slotLinkPin(i)} {
				if err := repin(filepath.Join(gen.dir, name), filepath.Join(dir, name)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		d.log.Warn("pin the chain for libxdp; xdp-loader will not show it", "dir", d.opts.LibxdpDir, "error", err)
	}
}

// unmirror removes the libxdp pins of the dispatcher with kernel id id.
func (d *Dispatcher) unmirror(id ebpf.ProgramID) {
	if d.opts.LibxdpDir == "" || d.hook.Kind != progtype.XDP {
		return
	}
	dir := d.libxdpChainDir(id)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return
	}
	err := d.withLibxdpLock(func() error { return os.RemoveAll(dir) })
	if err != nil {
		d.log.Warn("remove libxdp pins", "dir", dir, "error", err)
	}
}

func (d *Dispatcher) libxdpChainDir(id ebpf.ProgramID) string {
	return filepath.Join(d.opts.LibxdpDir, fmt.Sprintf("dispatch-%d-%d", d.hook.Ifindex, id))
}

// withLibxdpLock runs fn holding libxdp's lock on its directory.
func (d *Dispatcher) withLibxdpLock(fn func() error) error {
	if err := os.MkdirAll(d.opts.LibxdpDir, 0o700); err != nil {
		return err
	}
	f, err := os.Open(d.opts.LibxdpDir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", d.opts.LibxdpDir, err)
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return fn()
}

// repin pins the object pinned at from at to as well, unless to exists.
func repin(from, to string) error {
	if _, err := os.Stat(to); err == nil {
		return nil
	}
	fd, err := objGet(from)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return objPin(fd, to)
}
