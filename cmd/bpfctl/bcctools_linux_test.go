package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/perf"
	"github.com/google/go-cmp/cmp"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/internal/testing/testimage"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// These tests run bcc's tools, as Debian's libbpf-tools package ships them,
// through bpfd: the object each tool's binary embeds is extracted unchanged,
// built into an artifact, signed, and loaded with bpfctl; the tool's
// configuration (its .rodata) is set with --global, and the events its
// programs write to their perf event array are read from the map's pin and
// checked against what the test did.

// bccImage extracts the BPF object of bcc's tool, builds it into a signed
// artifact the node's trust policy admits and returns its reference.
func (n *node) bccImage(t *testing.T, tool string) string {
	t.Helper()
	ctx := context.Background()
	obj, err := artifact.ReadEmbeddedObject(testutil.LibbpfTool(t, tool))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), obj.Name)
	if err := os.WriteFile(path, obj.Data, 0o644); err != nil {
		t.Fatal(err)
	}
	ref, err := testimage.Build(ctx, "oci:"+filepath.Join(n.images, tool)+":v1", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.key.Sign(ctx, ref, verify.FormatBundle); err != nil {
		t.Fatal(err)
	}
	return ref
}

// global is a --global flag setting name to v, little-endian.
func global[T uint32 | int32 | uint64](name string, v T) string {
	b, err := binary.Append(nil, binary.LittleEndian, v)
	if err != nil {
		panic(err)
	}
	return "--global=" + name + "=" + hex.EncodeToString(b)
}

// eventReader reads the records a loaded program writes to its perf event
// array, through the map's pin.
type eventReader struct {
	m  *ebpf.Map
	rd *perf.Reader
}

// openEvents opens the perf event array map of p for reading. It must be
// open before the activity: the programs write only to CPUs with a reader.
func openEvents(t *testing.T, p programJSON, name string) *eventReader {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(mapPin(t, p, name), nil)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := perf.NewReader(m, 64*os.Getpagesize())
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	r := &eventReader{m: m, rd: rd}
	t.Cleanup(r.close)
	return r
}

func (r *eventReader) close() {
	r.rd.Close()
	r.m.Close()
}

// collect reads records until done returns true for all read so far or
// timeout passes; it returns the records and how many the kernel lost.
func (r *eventReader) collect(t *testing.T, timeout time.Duration, done func([][]byte) bool) (records [][]byte, lost uint64) {
	t.Helper()
	r.rd.SetDeadline(time.Now().Add(timeout))
	for !done(records) {
		rec, err := r.rd.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		lost += rec.LostSamples
		if len(rec.RawSample) > 0 {
			records = append(records, rec.RawSample)
		}
	}
	return records, lost
}

// cString returns the NUL-terminated string at the start of b.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func u32At(b []byte, off int) uint32 {
	if len(b) < off+4 {
		return 0
	}
	return binary.LittleEndian.Uint32(b[off:])
}

// unloadAll unloads the programs and checks that their pins are gone.
func (n *node) unloadAll(t *testing.T, progs []programJSON) {
	t.Helper()
	args := []string{"unload"}
	for _, p := range progs {
		args = append(args, strconv.FormatUint(p.ID, 10))
	}
	n.mustBpfctl(t, args...)
	for _, p := range progs {
		if _, err := os.Stat(filepath.Join(n.bpffs, strconv.FormatUint(p.ID, 10))); !os.IsNotExist(err) {
			t.Errorf("pins of %d remain after unload: %v", p.ID, err)
		}
	}
}

// The record layouts of Debian 12's libbpf-tools (0.26): where the fields
// the tests check sit in each tool's event, as its header declares it.
const (
	// opensnoop: struct event { __u64 ts; pid_t pid; uid_t uid; int ret;
	// int flags; __u64 callers[2]; char comm[16]; char fname[255]; }
	// (measured: its object's BTF does not describe it).
	opensnoopPID   = 8
	opensnoopRet   = 16
	opensnoopFname = 56
	// runqslower: struct event { char task[16]; char prev_task[16]; __u64
	// delta_us; pid_t pid; pid_t prev_pid; } (measured likewise).
	runqslowerTask = 0
	runqslowerPID  = 40
	// execsnoop's and solisten's events are described by their objects' BTF
	// (struct event); the offsets are checked against it in TestBCCLayouts.
	execsnoopPID, execsnoopPPID, execsnoopRetval, execsnoopArgsCount, execsnoopArgsSize, execsnoopComm, execsnoopArgs = 0, 4, 12, 16, 20, 24, 40
	solistenPID, solistenBacklog, solistenPort                                                                        = 16, 24, 32
)

// TestBCCOpensnoop runs bcc's opensnoop, unmodified, through bpfd on its
// tracepoints, configured with its targ_tgid to this process, and sees an
// event for each file this test opens, with its name, pid and descriptor.
func TestBCCOpensnoop(t *testing.T) {
	n := startNode(t)
	ref := n.bccImage(t, "opensnoop")
	progs := n.loadJSON(t, "load", "image", ref,
		"--program", "tracepoint__syscalls__sys_enter_openat:tracepoint",
		"--program", "tracepoint__syscalls__sys_exit_openat:tracepoint",
		global("targ_tgid", uint32(os.Getpid())))
	events := openEvents(t, progs[0], "events")

	dir := t.TempDir()
	want := map[string]bool{}
	for i := range 5 {
		name := filepath.Join(dir, fmt.Sprintf("bcc-opensnoop-%d", i))
		f, err := os.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		want[name] = true
	}
	seen := map[string]bool{}
	records, lost := events.collect(t, 10*time.Second, func(rs [][]byte) bool {
		seen = map[string]bool{}
		for _, r := range rs {
			if len(r) > opensnoopFname {
				if name := cString(r[opensnoopFname:]); want[name] {
					seen[name] = true
				}
			}
		}
		return len(seen) == len(want)
	})
	if lost != 0 {
		t.Errorf("opensnoop lost %d records", lost)
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("no opensnoop event for %s among %d records", name, len(records))
		}
	}
	for _, r := range records {
		if pid := u32At(r, opensnoopPID); pid != uint32(os.Getpid()) {
			t.Errorf("opensnoop event of pid %d (%q), want only this process's (%d): targ_tgid not applied", pid, cString(r[min(len(r), opensnoopFname):]), os.Getpid())
		}
		if name := cString(r[min(len(r), opensnoopFname):]); want[name] && int32(u32At(r, opensnoopRet)) < 0 {
			t.Errorf("opensnoop event for %s says the open failed (%d)", name, int32(u32At(r, opensnoopRet)))
		}
	}
	n.unloadAll(t, progs)
}

// TestBCCExecsnoop runs bcc's execsnoop, unmodified, through bpfd on its
// execve tracepoints and sees an event for each process this test executes,
// with its parent, command and arguments.
func TestBCCExecsnoop(t *testing.T) {
	n := startNode(t)
	ref := n.bccImage(t, "execsnoop")
	progs := n.loadJSON(t, "load", "image", ref,
		"--program", "tracepoint__syscalls__sys_enter_execve:tracepoint",
		"--program", "tracepoint__syscalls__sys_exit_execve:tracepoint")
	events := openEvents(t, progs[0], "events")

	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	marker := fmt.Sprintf("bcc-execsnoop-%d", time.Now().UnixNano())
	want := map[string]bool{}
	for i := range 5 {
		arg := fmt.Sprintf("%s-%d", marker, i)
		if err := exec.Command(truePath, arg).Run(); err != nil {
			t.Fatal(err)
		}
		want[arg] = true
	}
	mine := func(r []byte) (arg string, ok bool) {
		if len(r) <= execsnoopArgs || u32At(r, execsnoopPPID) != uint32(os.Getpid()) {
			return "", false
		}
		args := strings.Split(strings.TrimRight(string(r[execsnoopArgs:]), "\x00"), "\x00")
		if len(args) != 2 || !strings.HasPrefix(args[1], marker) {
			return "", false
		}
		return args[1], true
	}
	seen := map[string]bool{}
	records, lost := events.collect(t, 10*time.Second, func(rs [][]byte) bool {
		for _, r := range rs {
			if arg, ok := mine(r); ok {
				seen[arg] = true
			}
		}
		return len(seen) == len(want)
	})
	if lost != 0 {
		t.Errorf("execsnoop lost %d records", lost)
	}
	for arg := range want {
		if !seen[arg] {
			t.Errorf("no execsnoop event for %s %s among %d records", truePath, arg, len(records))
		}
	}
	for _, r := range records {
		if _, ok := mine(r); !ok {
			continue
		}
		if comm, ret, argc := cString(r[execsnoopComm:execsnoopArgs]), int32(u32At(r, execsnoopRetval)), u32At(r, execsnoopArgsCount); comm != "true" || ret != 0 || argc != 2 {
			t.Errorf("execsnoop event: comm %q, retval %d, %d arguments; want true, 0, 2", comm, ret, argc)
		}
	}
	n.unloadAll(t, progs)
}

// runqslowerTwins are runqslower's two sets of programs doing one job: its
// own loader runs the tp_btf ones where the kernel has BTF, else the raw_tp
// ones. A load names the set it runs.
var runqslowerTwins = map[string][]string{
	"raw_tracepoint": {"handle_sched_wakeup", "handle_sched_wakeup_new", "handle_sched_switch"},
	"tp_btf":         {"sched_wakeup", "sched_wakeup_new", "sched_switch"},
}

// TestBCCRunqslowerTwins runs bcc's runqslower, unmodified, through bpfd
// once with its raw tracepoint programs and once with their BTF-enabled
// twins, configured (min_us 0, targ_tgid) to report every wake-up of this
// process's threads, and sees this process's threads in the events.
func TestBCCRunqslowerTwins(t *testing.T) {
	n := startNode(t)
	ref := n.bccImage(t, "runqslower")
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	for kind, names := range runqslowerTwins {
		t.Run(kind, func(t *testing.T) {
			args := []string{"load", "image", ref, global("min_us", uint64(0)), global("targ_tgid", uint32(os.Getpid()))}
			for _, name := range names {
				args = append(args, "--program", name+":"+kind)
			}
			progs := n.loadJSON(t, args...)
			for _, p := range progs {
				if p.Type != kind {
					t.Errorf("program %s loaded as %s, want %s", p.Name, p.Type, kind)
				}
			}
			events := openEvents(t, progs[0], "events")
			for range 50 {
				time.Sleep(time.Millisecond) // a wake-up of this process's threads
			}
			records, _ := events.collect(t, 10*time.Second, func(rs [][]byte) bool { return len(rs) >= 10 })
			if len(records) < 10 {
				t.Errorf("runqslower (%s) reported %d wake-ups of this process, want at least 10", kind, len(records))
			}
			threads := 0
			for _, r := range records {
				task, pid := cString(r[runqslowerTask:min(len(r), 16)]), u32At(r, runqslowerPID)
				if task != strings.TrimSpace(string(comm)) {
					t.Errorf("runqslower (%s) reported task %q (pid %d), want only this process's threads (%q)", kind, task, pid, strings.TrimSpace(string(comm)))
				}
				if _, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", pid)); err == nil {
					threads++
				}
			}
			if threads == 0 && len(records) > 0 {
				t.Errorf("runqslower (%s): none of the %d events names a thread of this process", kind, len(records))
			}
			n.unloadAll(t, progs)
		})
	}
}

// TestBCCRefusals loads bcc's tools in ways the node must refuse — a twin
// that does not exist, a tracepoint or kernel function the kernel does not
// have — and checks each refusal's one line and that nothing was loaded,
// pinned or recorded.
func TestBCCRefusals(t *testing.T) {
	n := startNode(t)
	runqslower := n.bccImage(t, "runqslower")
	solisten := n.bccImage(t, "solisten")
	cases := map[string]struct {
		args     []string
		code     int
		fragment string
	}{
		"missing twin":          {args: []string{"load", "image", runqslower, "--program", "handle_sched_switch_btf:tp_btf"}, code: cliutil.ExitNotFound, fragment: "program handle_sched_switch_btf: not in runqslower.bpf.o"},
		"twin of another kind":  {args: []string{"load", "image", runqslower, "--program", "handle_sched_switch:tp_btf"}, code: cliutil.ExitUsage, fragment: "handle_sched_switch: is of kind raw_tracepoint"},
		"missing tp_btf":        {args: []string{"load", "image", runqslower, "--program", "sched_switch:tp_btf", "--tracepoint", "bpfd_no_such_tracepoint"}, code: cliutil.ExitNotFound, fragment: "tracepoint bpfd_no_such_tracepoint: not in the kernel's BTF"},
		"missing raw tp":        {args: []string{"load", "image", runqslower, "--program", "handle_sched_switch:raw_tracepoint", "--tracepoint", "bpfd_no_such_tracepoint"}, code: cliutil.ExitNotFound, fragment: "bpfd_no_such_tracepoint"},
		"missing function":      {args: []string{"load", "image", solisten, "--program", "inet_listen_fexit:fexit", "--function", "bpfd_no_such_function"}, code: cliutil.ExitNotFound, fragment: "kernel function bpfd_no_such_function: not in the kernel's BTF"},
		"tracepoint with group": {args: []string{"load", "image", runqslower, "--program", "handle_sched_switch:raw_tracepoint", "--tracepoint", "sched/sched_switch"}, code: cliutil.ExitUsage, fragment: "without its group"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := n.bpfctl(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.fragment) || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "bpfctl: ") {
				t.Errorf("exit %d, stderr %q; want exit %d and one line mentioning %q", code, stderr, tc.code, tc.fragment)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
	var list programListJSON
	if err := json.Unmarshal([]byte(n.mustBpfctl(t, "list", "-o", "json")), &list); err != nil || len(list.Programs) != 0 {
		t.Errorf("after refusals list shows %+v (%v), want nothing", list.Programs, err)
	}
	entries, err := os.ReadDir(n.bpffs)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, err := strconv.ParseUint(e.Name(), 10, 64); err == nil {
			t.Errorf("after refusals %s holds pins of program %s", n.bpffs, e.Name())
		}
	}
}

// solistenTwins are solisten's two ways of reporting a listen(): a kprobe
// and kretprobe pair, and an fexit program.
var solistenTwins = map[string][]string{
	"kprobe": {"inet_listen_entry:kprobe", "inet_listen_exit:kretprobe"},
	"fexit":  {"inet_listen_fexit:fexit"},
}

// TestBCCSolistenTwins runs bcc's solisten, unmodified, through bpfd once
// with its kprobes and once with its fexit twin, configured (target_pid) to
// report this process's listens, and sees the port of each socket this test
// listens on. It needs kprobes and BPF trampolines: it runs in the kernel VM.
func TestBCCSolistenTwins(t *testing.T) {
	n := startNode(t)
	ref := n.bccImage(t, "solisten")
	for twin, programs := range solistenTwins {
		t.Run(twin, func(t *testing.T) {
			if twin == "kprobe" {
				testutil.RequireKernelFeature(t, testutil.FeatureKprobe)
				testutil.RequireKernelFeature(t, testutil.FeatureKretprobe)
			} else {
				testutil.RequireKernelFeature(t, testutil.FeatureFexit)
			}
			args := []string{"load", "image", ref, global("target_pid", uint32(os.Getpid()))}
			for _, p := range programs {
				args = append(args, "--program", p)
			}
			progs := n.loadJSON(t, args...)
			events := openEvents(t, progs[0], "events")

			want := map[uint16]bool{}
			for range 3 {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				want[uint16(ln.Addr().(*net.TCPAddr).Port)] = true
				ln.Close()
			}
			seen := map[uint16]bool{}
			records, lost := events.collect(t, 10*time.Second, func(rs [][]byte) bool {
				for _, r := range rs {
					if len(r) >= solistenPort+2 && want[binary.LittleEndian.Uint16(r[solistenPort:])] {
						seen[binary.LittleEndian.Uint16(r[solistenPort:])] = true
					}
				}
				return len(seen) == len(want)
			})
			if lost != 0 {
				t.Errorf("solisten (%s) lost %d records", twin, lost)
			}
			for port := range want {
				if !seen[port] {
					t.Errorf("solisten (%s): no event for the listen on port %d among %d records", twin, port, len(records))
				}
			}
			for _, r := range records {
				if pid := u32At(r, solistenPID); pid != uint32(os.Getpid()) {
					t.Errorf("solisten (%s) event of pid %d, want only this process's (%d): target_pid not applied", twin, pid, os.Getpid())
				}
			}
			n.unloadAll(t, progs)
		})
	}
}

// TestBCCLayouts holds the offsets the tests read in execsnoop's and
// solisten's events to the record type their objects' BTF describes.
func TestBCCLayouts(t *testing.T) {
	cases := map[string]map[string]int{
		"execsnoop": {"pid": execsnoopPID, "ppid": execsnoopPPID, "retval": execsnoopRetval, "args_count": execsnoopArgsCount,
			"args_size": execsnoopArgsSize, "comm": execsnoopComm, "args": execsnoopArgs},
		"solisten": {"pid": solistenPID, "backlog": solistenBacklog, "port": solistenPort},
	}
	for tool, want := range cases {
		t.Run(tool, func(t *testing.T) {
			obj, err := artifact.ReadEmbeddedObject(testutil.LibbpfTool(t, tool))
			if err != nil {
				t.Fatal(err)
			}
			spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(obj.Data))
			if err != nil {
				t.Fatal(err)
			}
			var event *btf.Struct
			if err := spec.Types.TypeByName("event", &event); err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, m := range event.Members {
				if _, ok := want[m.Name]; ok {
					got[m.Name] = int(m.Offset.Bytes())
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("struct event offsets (-want +got):\n%s", diff)
			}
		})
	}
}
