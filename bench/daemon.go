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
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bpfd-dev/bpfd/internal/testimage"
	"github.com/bpfd-dev/bpfd/pkg/verify"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

func init() {
	groups = append(groups,
		group{name: "bpfd: load+attach+unload", setup: daemonLatencyRows},
		group{name: "bpfd: list 1,000 programs", setup: daemonListRows},
	)
}

// benchDaemon is a bpfd process on a socket, state and bpffs of its own,
// with signed artifacts of the example objects in an OCI layout.
type benchDaemon struct {
	env    *Env
	dir    string
	socket string
	bpffs  string
	refs   map[string]string // object name -> reference by digest
	cmd    *exec.Cmd
	conn   *grpc.ClientConn
	client pb.BpfdClient
}

// startDaemon builds and signs artifacts of objects, starts bin/bpfd and
// pre-pulls the artifacts, so that loads come from a cached digest.
func startDaemon(ctx context.Context, env *Env, name string, objects ...string) (_ *benchDaemon, err error) {
	for _, bin := range []string{"bpfd", "bpfctl"} {
		if _, err := os.Stat(filepath.Join(env.Bin, bin)); err != nil {
			return nil, fmt.Errorf("%s: %w (make build)", bin, err)
		}
	}
	d := &benchDaemon{env: env, dir: filepath.Join(env.Dir, name), refs: map[string]string{}}
	d.socket = filepath.Join(d.dir, "bpfd.sock")
	d.bpffs = filepath.Join(d.dir, "bpffs")
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			d.stop()
		}
	}()
	key, err := testimage.NewKey(d.dir, "bench")
	if err != nil {
		return nil, err
	}
	images := filepath.Join(d.dir, "images")
	for _, o := range objects {
		ref, err := testimage.Build(ctx, "oci:"+filepath.Join(images, strings.TrimSuffix(o, ".bpf.o"))+":v1", filepath.Join(env.Root, "bytecode", o))
		if err != nil {
			return nil, err
		}
		if err := key.Sign(ctx, ref, verify.FormatBundle); err != nil {
			return nil, err
		}
		d.refs[o] = ref
	}
	policy := filepath.Join(d.dir, "policy.yaml")
	if err := testimage.WritePolicy(policy, testimage.Rule{Name: "bench", Images: []string{"oci:" + images + "/**"}, Keys: []string{key.PubFile}}); err != nil {
		return nil, err
	}
	config := filepath.Join(d.dir, "bpfd.yaml")
	if err := os.WriteFile(config, []byte("apiVersion: bpfd.io/v1alpha1\nkind: DaemonConfig\n"), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(d.dir, "bpfd.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	d.cmd = exec.Command(filepath.Join(env.Bin, "bpfd"), "--config", config, "--socket", d.socket,
		"--state-dir", filepath.Join(d.dir, "state"), "--bpffs", d.bpffs, "--policy", policy, "--log-level", "warn")
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	if d.conn, err = grpc.NewClient("unix://"+d.socket, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		return nil, err
	}
	d.client = pb.NewBpfdClient(d.conn)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := d.client.List(ctx, &pb.ListRequest{}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("bpfd does not answer on %s (log: %s)", d.socket, filepath.Join(d.dir, "bpfd.log"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, ref := range d.refs {
		if _, err := d.client.PullImage(ctx, &pb.PullImageRequest{Bytecode: &pb.Bytecode{Reference: ref}}); err != nil {
			return nil, fmt.Errorf("pull %s: %w", ref, err)
		}
	}
	return d, nil
}

// stop unloads everything, stops bpfd and unmounts its bpffs.
func (d *benchDaemon) stop() {
	if d.client != nil {
		if list, err := d.client.List(context.Background(), &pb.ListRequest{}); err == nil && len(list.GetPrograms()) > 0 {
			var ids []uint64
			for _, p := range list.GetPrograms() {
				ids = append(ids, p.GetId())
			}
			d.client.Unload(context.Background(), &pb.UnloadRequest{Ids: ids})
		}
		d.conn.Close()
	}
	if d.cmd != nil && d.cmd.Process != nil {
		d.cmd.Process.Signal(syscall.SIGTERM)
		d.cmd.Wait()
	}
	syscall.Unmount(d.bpffs, syscall.MNT_DETACH)
}

// bpfctl runs bin/bpfctl against the daemon and returns its output.
func (d *benchDaemon) bpfctl(ctx context.Context, args ...string) ([]byte, error) {
	return runTool(ctx, filepath.Join(d.env.Bin, "bpfctl"), append([]string{"--socket", d.socket}, args...)...)
}

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
// unload ID`, two processes (bpfd verifies the cached signature on each
// load, records and pins), against the same kernel steps done by a peer on
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
		{
			Name: "bpfd: bpfctl list, 1 program loaded",
			Ours: Side{Name: "bpfctl list", Run: func(ctx context.Context) error { _, err := d.bpfctl(ctx, "list"); return err }},
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

// listPrograms is how many programs the list row loads: tracepoint programs
// spread over syscall tracepoints (the kernel takes 64 programs per
// tracepoint), sharing the first one's maps.
const listPrograms = 1000

// daemonListRows loads listPrograms programs through the API and times
// `bpfctl list` (a table of them all) and `bpfctl list -o json`.
func daemonListRows(ctx context.Context, env *Env) (_ []Row, _ func(), err error) {
	d, err := startDaemon(ctx, env, "daemon-list", "tracepoint_counter.bpf.o")
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			d.stop()
		}
	}()
	tracepoints, err := syscallTracepoints(20)
	if err != nil {
		return nil, nil, err
	}
	var owner uint64
	for i := range listPrograms {
		tp := tracepoints[i%len(tracepoints)]
		resp, err := d.client.Load(ctx, &pb.LoadRequest{
			Bytecode:   &pb.Bytecode{Reference: d.refs["tracepoint_counter.bpf.o"]},
			Programs:   []*pb.LoadProgram{{Name: "tracepoint_counter", Type: pb.ProgramType_PROGRAM_TYPE_TRACEPOINT, Attach: &pb.AttachSpec{Spec: &pb.AttachSpec_Tracepoint{Tracepoint: &pb.TracepointAttach{Tracepoint: tp}}}}},
			MapOwnerId: owner,
			Metadata:   map[string]string{"bench": "list"},
		})
		if err != nil {
			return nil, nil, fmt.Errorf("load %d of %d on %s: %w", i+1, listPrograms, tp, err)
		}
		if owner == 0 {
			owner = resp.GetPrograms()[0].GetId()
		}
	}
	list := func(args ...string) func(context.Context) error {
		return func(ctx context.Context) error {
			out, err := d.bpfctl(ctx, append([]string{"list"}, args...)...)
			if err != nil {
				return err
			}
			if n := bytes.Count(out, []byte("tracepoint_counter")); n < listPrograms {
				return fmt.Errorf("bpfctl list showed %d programs, want %d", n, listPrograms)
			}
			return nil
		}
	}
	rows := []Row{
		{Name: fmt.Sprintf("bpfd: bpfctl list, %d programs loaded", listPrograms), Ours: Side{Name: "bpfctl list", Run: list()}},
		{Name: fmt.Sprintf("bpfd: bpfctl list -o json, %d programs loaded", listPrograms), Ours: Side{Name: "bpfctl list -o json", Run: list("-o", "json")}},
	}
	return rows, d.stop, nil
}

// syscallTracepoints returns n syscall entry tracepoints of this kernel.
func syscallTracepoints(n int) ([]string, error) {
	var out []string
	for _, root := range []string{"/sys/kernel/tracing/events/syscalls", "/sys/kernel/debug/tracing/events/syscalls"} {
		entries, err := os.ReadDir(root)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "sys_enter_") && len(out) < n {
				out = append(out, "syscalls/"+e.Name())
			}
		}
		if len(out) == n {
			return out, nil
		}
	}
	return nil, errors.New("fewer syscall tracepoints than needed (is tracefs mounted?)")
}
