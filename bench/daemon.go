package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

var loadedID = regexp.MustCompile(`"id":\s*(\d+)`)

// loadUnload loads with bpfctl (JSON output, for the id) and unloads.
func (d *benchDaemon) loadUnload(args ...string) func(context.Context) error {
	return func(ctx context.Context) error {
		out, err := d.bpfctl(ctx, append(append([]string{"load", "image"}, args...), "-o", "json")...)
		if err != nil {
			return err
		}
		m := loadedID.FindSubmatch(out)
		if m == nil {
			return fmt.Errorf("no program id in bpfctl's output: %s", out)
		}
		_, err = d.bpfctl(ctx, "unload", string(m[1]))
		return err
	}
}

func runTool(ctx context.Context, name string, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// vethPair creates a veth pair in this namespace, both ends up, and returns
// their names and a function removing it.
func vethPair(ctx context.Context) (string, string, func(), error) {
	suffix := fmt.Sprintf("%06x", time.Now().UnixNano()&0xffffff)
	a, b := "bbench"+suffix+"a", "bbench"+suffix+"b"
	del := func() { exec.Command("ip", "link", "del", a).Run() }
	if err := runCommands(ctx,
		command{Path: "ip", Args: []string{"link", "add", a, "type", "veth", "peer", "name", b}},
		command{Path: "ip", Args: []string{"link", "set", a, "up"}},
		command{Path: "ip", Args: []string{"link", "set", b, "up"}},
	); err != nil {
		del()
		return "", "", nil, err
	}
	return a, b, del, nil
}

// daemonLatencyRows times loading, attaching and unloading a program from an
// artifact bpfd has cached: `bpfctl load image REF@DIGEST` then `bpfctl
// unload ID`, two processes (bpfd admits the load by the verdict its policy
// remembered of the cached signatures, reads the objects checking their
// digests, records and pins), against the same kernel steps done by a peer on
// the object file: Debian's bpftool for XDP (prog load and pin, net attach,
// net detach, rm the pin), and for TCX and the tracepoint, which bpftool 7.1
// cannot attach, bench/minload (cilium/ebpf: load, attach with a link, pin
// program, link and maps; then remove the pins), also two processes. One
// other program stays loaded throughout, which `bpfctl list` of one program
// then lists.
func daemonLatencyRows(ctx context.Context, env *Env) (_ []Row, _ func(), err error) {
	for _, tool := range []string{"bpftool", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, nil, fmt.Errorf("%s: %w (hack/tools.sh apt)", tool, err)
		}
	}
	d, err := startDaemon(ctx, env, "daemon-latency", "xdp_counter.bpf.o", "tc_counter.bpf.o", "tracepoint_counter.bpf.o")
	if err != nil {
		return nil, nil, err
	}
	ours, theirs, delVeth, err := vethPair(ctx)
	if err != nil {
		d.stop()
		return nil, nil, err
	}
	peerFS := filepath.Join(d.dir, "peerfs")
	cleanup := func() {
		delVeth()
		syscall.Unmount(peerFS, syscall.MNT_DETACH)
		d.stop()
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	minload := filepath.Join(d.dir, "minload")
	if err := runCommands(ctx, command{Path: "go", Args: []string{"build", "-o", minload, "./bench/minload"}, Dir: env.Root}); err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(peerFS, 0o700); err != nil {
		return nil, nil, err
	}
	if err := syscall.Mount("bpffs", peerFS, "bpf", 0, ""); err != nil {
		return nil, nil, fmt.Errorf("mount bpffs: %w", err)
	}
	if _, err := d.bpfctl(ctx, "load", "image", d.refs["tracepoint_counter.bpf.o"], "--program", "tracepoint_counter:tracepoint", "--tracepoint", "syscalls/sys_enter_getpid"); err != nil {
		return nil, nil, fmt.Errorf("resident program: %w", err)
	}

	obj := func(name string) string { return filepath.Join(env.Root, "bytecode", name) }
	pin := filepath.Join(peerFS, "prog")
	tool := func(path string, args ...string) command { return command{Path: path, Args: args} }
	// The checks, untimed after each run: the side unloaded everything it
	// loaded, so that the next run does all the work again.
	oursClean := func(iface string) func(context.Context) error {
		return func(ctx context.Context) error {
			list, err := d.client.List(ctx, &pb.ListRequest{})
			if err != nil {
				return err
			}
			if n := len(list.GetPrograms()); n != 1 {
				return fmt.Errorf("bpfd lists %d programs after the run, want the 1 resident", n)
			}
			return noXDP(iface)
		}
	}
	peerClean := func(iface string) func(context.Context) error {
		return func(context.Context) error {
			if _, err := os.Stat(pin); !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("pin %s after the run: %v", pin, err)
			}
			return noXDP(iface)
		}
	}
	rows := []Row{
		{
			Name: "bpfd: load+attach+unload xdp from a cached digest",
			Ours: Side{Name: "bpfctl load image (xdp) + bpfctl unload", Run: d.loadUnload(d.refs["xdp_counter.bpf.o"], "--program", "xdp_counter:xdp", "--interface", ours), Check: oursClean(ours)},
			Peer: &Side{Name: "bpftool prog load + net attach xdp + net detach + rm pin", Run: func(ctx context.Context) error {
				return runCommands(ctx,
					tool("bpftool", "prog", "load", obj("xdp_counter.bpf.o"), pin, "type", "xdp"),
					tool("bpftool", "net", "attach", "xdp", "pinned", pin, "dev", theirs),
					tool("bpftool", "net", "detach", "xdp", "dev", theirs),
					tool("rm", pin))
			}, Check: peerClean(theirs)},
		},
		{
			Name: "bpfd: load+attach+unload tcx from a cached digest",
			Ours: Side{Name: "bpfctl load image (tcx) + bpfctl unload", Run: d.loadUnload(d.refs["tc_counter.bpf.o"], "--program", "tcx_counter:tcx", "--interface", ours, "--direction", "ingress"), Check: oursClean(ours)},
			Peer: &Side{Name: "minload load (tcx) + minload unload (bpftool 7.1 has no tcx)", Run: func(ctx context.Context) error {
				return runCommands(ctx,
					tool(minload, "load", obj("tc_counter.bpf.o"), "tcx_counter", "tcx", theirs, pin),
					tool(minload, "unload", pin))
			}, Check: peerClean(theirs)},
		},
		{
			Name: "bpfd: load+attach+unload tracepoint from a cached digest",
			Ours: Side{Name: "bpfctl load image (tracepoint) + bpfctl unload", Run: d.loadUnload(d.refs["tracepoint_counter.bpf.o"], "--program", "tracepoint_counter:tracepoint", "--tracepoint", "syscalls/sys_enter_getppid"), Check: oursClean(ours)},
			Peer: &Side{Name: "minload load (tracepoint) + minload unload (bpftool 7.1 cannot attach it)", Run: func(ctx context.Context) error {
				return runCommands(ctx,
					tool(minload, "load", obj("tracepoint_counter.bpf.o"), "tracepoint_counter", "tracepoint", "syscalls/sys_enter_getppid", pin),
					tool(minload, "unload", pin))
			}, Check: peerClean(theirs)},
		},
	}
	return rows, cleanup, nil
}

// noXDP fails when iface runs an XDP program.
func noXDP(iface string) error {
	l, err := netlink.LinkByName(iface)
	if err != nil {
		return err
	}
	if x := l.Attrs().Xdp; x != nil && x.ProgId != 0 {
		return fmt.Errorf("%s still runs XDP program %d after the run", iface, x.ProgId)
	}
	return nil
}
