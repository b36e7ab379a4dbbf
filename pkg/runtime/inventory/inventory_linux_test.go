package inventory_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/runtime/inventory"
)

// TestHoldersInPodCgroups starts a process in a cgroup named as the kubelet
// names a pod container's, under each cgroup driver, that loads a program
// and a map outside bpfd and holds them; each holder source attributes both
// to that process, its container and its pod.
func TestHoldersInPodCgroups(t *testing.T) {
	testutil.RequirePrivileged(t)
	runtimes := map[testutil.CgroupDriver]string{testutil.CgroupDriverSystemd: "containerd", testutil.CgroupDriverCgroupfs: ""}
	for _, driver := range []testutil.CgroupDriver{testutil.CgroupDriverSystemd, testutil.CgroupDriverCgroupfs} {
		for _, source := range []inventory.HolderSource{inventory.HolderSourceIterator, inventory.HolderSourceProcfs} {
			t.Run(string(driver)+"/"+string(source), func(t *testing.T) {
				pp := testutil.StartPodProcess(t, driver, "")
				inv := scan(t, inventory.Options{Holders: source})
				if inv.HolderSource != source {
					t.Fatalf("holder source %q, want %q", inv.HolderSource, source)
				}
				p := program(t, inv, pp.ProgramID)
				if p.Name != pp.ProgramName || p.Type != "SocketFilter" || !slices.Contains(p.MapIDs, pp.MapID) {
					t.Errorf("program %d: %s %s maps %v; want %s SocketFilter with map %d", p.ID, p.Name, p.Type, p.MapIDs, pp.ProgramName, pp.MapID)
				}
				if !p.HaveLoaderUID || p.LoaderUID != 0 {
					t.Errorf("program %d: loader uid %d (known %v), want 0", p.ID, p.LoaderUID, p.HaveLoaderUID)
				}
				checkHeldBy(t, "program", p.Holders, pp.PID)
				m := mapByID(t, inv, pp.MapID)
				checkHeldBy(t, "map", m.Holders, pp.PID)
				if !slices.Contains(m.ProgramIDs, pp.ProgramID) {
					t.Errorf("map %d: used by %v, want program %d among them", m.ID, m.ProgramIDs, pp.ProgramID)
				}

				proc := process(t, inv, pp.PID)
				want := inventory.Process{
					PID: pp.PID, Comm: truncate(filepath.Base(testutil.UprobeTargetBinary(t)), 15), Exe: testutil.UprobeTargetBinary(t),
					Cgroup: pp.Cgroup,
					Pod:    &inventory.PodCgroup{PodUID: pp.PodUID, QOSClass: "Burstable", ContainerID: pp.ContainerID, Runtime: runtimes[driver]},
				}
				if diff := cmp.Diff(want, proc); diff != "" {
					t.Errorf("process (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestPinnedOnly finds a program and a map that only pins hold, each at
// its pin under a bpffs the test mounted, in a directory below its root.
func TestPinnedOnly(t *testing.T) {
	testutil.RequirePrivileged(t)
	fs := mountBPFFS(t)
	dir := filepath.Join(fs, "app", "v1")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	m, p := loadSocketFilter(t, "pinned_"+testutil.RandomSuffix(6))
	progPin, mapPin := filepath.Join(dir, "prog"), filepath.Join(dir, "map")
	if err := p.Pin(progPin); err != nil {
		t.Fatal(err)
	}
	if err := m.Pin(mapPin); err != nil {
		t.Fatal(err)
	}
	progID, mapID := programID(t, p), mapID(t, m)
	p.Close()
	m.Close()

	inv := scan(t, inventory.Options{})
	gotProg := program(t, inv, progID)
	if diff := cmp.Diff([]string{progPin}, gotProg.Pins); diff != "" {
		t.Errorf("program pins (-want +got):\n%s", diff)
	}
	if len(gotProg.Holders) != 0 {
		t.Errorf("program held by %+v, want no process", gotProg.Holders)
	}
	gotMap := mapByID(t, inv, mapID)
	if diff := cmp.Diff([]string{mapPin}, gotMap.Pins); diff != "" {
		t.Errorf("map pins (-want +got):\n%s", diff)
	}
	if len(gotMap.Holders) != 0 {
		t.Errorf("map held by %+v, want no process", gotMap.Holders)
	}
}

// TestLinkOnly finds programs that only their links hold, with where each
// link attaches: pinned cgroup, tcx and xdp links, and a raw tracepoint
// and a tracepoint link this process holds.
func TestLinkOnly(t *testing.T) {
	testutil.RequirePrivileged(t)
	fs := mountBPFFS(t)
	self := os.Getpid()

	cases := map[string]struct {
		feature testutil.KernelFeature
		// attach attaches a program it loads and returns its link and
		// the attachment the inventory should report.
		attach func(t *testing.T) (link.Link, inventory.Attachment)
		pin    bool
	}{
		"cgroup": {
			pin: true,
			attach: func(t *testing.T) (link.Link, inventory.Attachment) {
				cg := testutil.NewCgroup(t)
				p := loadProgram(t, ebpf.CGroupSKB, ebpf.AttachCGroupInetIngress, 1)
				l, err := link.AttachCgroup(link.CgroupOptions{Path: cg, Attach: ebpf.AttachCGroupInetIngress, Program: p})
				p.Close() // only the link holds it
				if err != nil {
					t.Fatal(err)
				}
				return l, inventory.Attachment{Hook: inventory.HookCgroup, AttachType: "CGroupInetIngress", CgroupID: cgroupID(t, cg), Cgroup: cgroupPath(t, cg)}
			},
		},
		"tcx": {
			feature: testutil.FeatureTCX, pin: true,
			attach: func(t *testing.T) (link.Link, inventory.Attachment) {
				v := testutil.NewVethPair(t)
				ifindex := ifindex(t, v.Host)
				p := loadProgram(t, ebpf.SchedCLS, ebpf.AttachTCXEgress, 0)
				l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: p, Attach: ebpf.AttachTCXEgress})
				p.Close() // only the link holds it
				if err != nil {
					t.Fatal(err)
				}
				return l, inventory.Attachment{Hook: inventory.HookTCX, AttachType: "TCXEgress", Ifindex: uint32(ifindex), Interface: v.Host, Direction: "egress"}
			},
		},
		"xdp": {
			feature: testutil.FeatureXDPLink, pin: true,
			attach: func(t *testing.T) (link.Link, inventory.Attachment) {
				v := testutil.NewVethPair(t)
				ifindex := ifindex(t, v.Host)
				p := loadProgram(t, ebpf.XDP, ebpf.AttachXDP, 2)
				l, err := link.AttachXDP(link.XDPOptions{Interface: ifindex, Program: p})
				p.Close() // only the link holds it
				if err != nil {
					t.Fatal(err)
				}
				return l, inventory.Attachment{Hook: inventory.HookXDP, Ifindex: uint32(ifindex), Interface: v.Host}
			},
		},
		"raw tracepoint": {
			attach: func(t *testing.T) (link.Link, inventory.Attachment) {
				p := loadProgram(t, ebpf.RawTracepoint, ebpf.AttachNone, 0)
				l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sys_enter", Program: p})
				p.Close() // only the link holds it
				if err != nil {
					t.Fatal(err)
				}
				return l, inventory.Attachment{Hook: inventory.HookRawTracepoint, Tracepoint: "sys_enter"}
			},
		},
		"tracepoint": {
			attach: func(t *testing.T) (link.Link, inventory.Attachment) {
				ensureTracefs(t)
				p := loadProgram(t, ebpf.TracePoint, ebpf.AttachNone, 0)
				l, err := link.Tracepoint("syscalls", "sys_enter_getppid", p, nil)
				p.Close() // only the link holds it
				if err != nil {
					t.Fatal(err)
				}
				return l, inventory.Attachment{Hook: inventory.HookTracepoint, Tracepoint: "sys_enter_getppid"}
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if tc.feature != "" {
				testutil.RequireKernelFeature(t, tc.feature)
			}
			l, want := tc.attach(t)
			info, err := l.Info()
			if err != nil {
				t.Fatal(err)
			}
			pin := ""
			if tc.pin {
				pin = filepath.Join(fs, strings.ReplaceAll(name, " ", "_"))
				if err := l.Pin(pin); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Remove(pin) })
				l.Close()
			} else {
				t.Cleanup(func() { l.Close() })
			}

			want = kernelReports(info, want)
			inv := scan(t, inventory.Options{})
			got := linkByID(t, inv, uint32(info.ID))
			if got.ProgramID != uint32(info.Program) {
				t.Errorf("link %d: program %d, want %d", got.ID, got.ProgramID, info.Program)
			}
			if diff := cmp.Diff(want, got.Attach); diff != "" {
				t.Errorf("link %d attachment (-want +got):\n%s", got.ID, diff)
			}
			if tc.pin {
				if diff := cmp.Diff([]string{pin}, got.Pins); diff != "" {
					t.Errorf("link pins (-want +got):\n%s", diff)
				}
				if len(got.Holders) != 0 {
					t.Errorf("pinned link held by %+v, want no process", got.Holders)
				}
			} else {
				checkHeldBy(t, "link", got.Holders, self)
			}
			p := program(t, inv, uint32(info.Program))
			if diff := cmp.Diff([]uint32{uint32(info.ID)}, p.LinkIDs); diff != "" {
				t.Errorf("program's links (-want +got):\n%s", diff)
			}
			if len(p.Holders) != 0 || len(p.Pins) != 0 {
				t.Errorf("program held by %+v, pinned at %v; want only its link", p.Holders, p.Pins)
			}
		})
	}
}

// TestBounds scans with bounds smaller than what the node has and checks
// that what they leave out is counted.
func TestBounds(t *testing.T) {
	testutil.RequirePrivileged(t)
	pp := testutil.StartPodProcess(t, testutil.CgroupDriverSystemd, "")
	// This process holds the pod process's program too: two holders.
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(pp.ProgramID))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	loadSocketFilter(t, "bounds_"+testutil.RandomSuffix(6))

	all := scan(t, inventory.Options{})
	if len(all.Programs) < 2 || len(all.Maps) < 2 || len(all.Processes) < 2 {
		t.Fatalf("unbounded scan: %d programs, %d maps, %d processes; want at least 2 each", len(all.Programs), len(all.Maps), len(all.Processes))
	}
	if all.Omitted.Any() {
		t.Fatalf("unbounded scan omitted %+v", all.Omitted)
	}
	if h := program(t, all, pp.ProgramID).Holders; len(h) != 2 {
		t.Fatalf("program %d: holders %+v, want the pod process and this one", pp.ProgramID, h)
	}

	inv := scan(t, inventory.Options{MaxObjects: 1, MaxProcesses: 1, MaxHolders: 1})
	if len(inv.Programs) != 1 || inv.Omitted.Programs < 1 {
		t.Errorf("programs: %d listed, %d omitted; want 1 and at least 1", len(inv.Programs), inv.Omitted.Programs)
	}
	if len(inv.Maps) != 1 || inv.Omitted.Maps < 1 {
		t.Errorf("maps: %d listed, %d omitted; want 1 and at least 1", len(inv.Maps), inv.Omitted.Maps)
	}
	if len(inv.Processes) != 1 || inv.Omitted.Processes < 1 {
		t.Errorf("processes: %d listed, %d omitted; want 1 and at least 1", len(inv.Processes), inv.Omitted.Processes)
	}
	for _, p := range inv.Programs {
		if len(p.Holders) > 1 {
			t.Errorf("program %d: %d holders, want at most 1", p.ID, len(p.Holders))
		}
	}

	// The pod process's program, when it is the one listed, has one
	// holder listed and one left out.
	inv = scan(t, inventory.Options{MaxHolders: 1})
	if h := program(t, inv, pp.ProgramID).Holders; len(h) != 1 || inv.Omitted.Holders < 1 {
		t.Errorf("program %d: holders %+v, %d omitted; want 1 and at least 1", pp.ProgramID, h, inv.Omitted.Holders)
	}
}

// TestScannerHidesItsIterator scans twice with one Scanner, whose iterator
// stays loaded between scans, and finds neither its program nor its link.
func TestScannerHidesItsIterator(t *testing.T) {
	testutil.RequirePrivileged(t)
	s := inventory.NewScanner()
	defer s.Close()
	for range 2 {
		inv, err := s.Scan(context.Background(), inventory.Options{Holders: inventory.HolderSourceIterator})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range inv.Programs {
			if p.Name == "task_files" && slices.ContainsFunc(p.Holders, func(h inventory.Holder) bool { return h.PID == os.Getpid() }) {
				t.Errorf("the scanner's own iterator is listed: program %d", p.ID)
			}
		}
		for _, l := range inv.Links {
			if l.Type == "iter" && slices.ContainsFunc(l.Holders, func(h inventory.Holder) bool { return h.PID == os.Getpid() }) {
				t.Errorf("the scanner's own iterator link is listed: link %d", l.ID)
			}
		}
		prog, link := s.Own()
		if prog == 0 || link == 0 {
			t.Fatalf("Own() = %d, %d while the iterator is loaded", prog, link)
		}
		if p, err := ebpf.NewProgramFromID(ebpf.ProgramID(prog)); err != nil {
			t.Errorf("Own() names program %d: %v", prog, err)
		} else {
			p.Close()
		}
	}
}

func TestInvalidOptions(t *testing.T) {
	cases := map[string]inventory.Options{
		"negative bound": {MaxObjects: -1},
		"unknown source": {Holders: "ptrace"},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := inventory.Scan(context.Background(), opts); !errors.Is(err, inventory.ErrInvalid) {
				t.Errorf("Scan: %v, want ErrInvalid", err)
			}
		})
	}
}

func scan(t *testing.T, opts inventory.Options) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.Scan(context.Background(), opts)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if len(inv.Warnings) > 0 {
		t.Logf("warnings: %v", inv.Warnings)
	}
	return inv
}

func program(t *testing.T, inv *inventory.Inventory, id uint32) inventory.Program {
	t.Helper()
	for _, p := range inv.Programs {
		if p.ID == id {
			return p
		}
	}
	t.Fatalf("program %d not in the inventory", id)
	return inventory.Program{}
}

func mapByID(t *testing.T, inv *inventory.Inventory, id uint32) inventory.Map {
	t.Helper()
	for _, m := range inv.Maps {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("map %d not in the inventory", id)
	return inventory.Map{}
}

func linkByID(t *testing.T, inv *inventory.Inventory, id uint32) inventory.Link {
	t.Helper()
	for _, l := range inv.Links {
		if l.ID == id {
			return l
		}
	}
	t.Fatalf("link %d not in the inventory", id)
	return inventory.Link{}
}

func process(t *testing.T, inv *inventory.Inventory, pid int) inventory.Process {
	t.Helper()
	for _, p := range inv.Processes {
		if p.PID == pid {
			return p
		}
	}
	t.Fatalf("process %d not in the inventory", pid)
	return inventory.Process{}
}

// checkHeldBy checks that exactly one process, pid, holds the object, by
// one descriptor.
func checkHeldBy(t *testing.T, what string, holders []inventory.Holder, pid int) {
	t.Helper()
	if len(holders) != 1 || holders[0].PID != pid || len(holders[0].FDs) != 1 {
		t.Errorf("%s held by %+v, want one descriptor of process %d", what, holders, pid)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// mountBPFFS mounts a bpffs for the test.
func mountBPFFS(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bpffs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("bpffs", dir, "bpf", 0, "mode=0700"); err != nil {
		t.Fatalf("mount bpffs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// loadSocketFilter loads a socket filter using a map, both named name,
// closed at the end of the test (Close twice is harmless).
func loadSocketFilter(t *testing.T, name string) (*ebpf.Map, *ebpf.Program) {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: name, Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: name, Type: ebpf.SocketFilter, License: "MIT",
		Instructions: asm.Instructions{asm.LoadMapPtr(asm.R1, m.FD()), asm.Mov.Imm(asm.R0, 0), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return m, p
}

// loadProgram loads a program of type typ that returns ret, closed at the
// end of the test.
func loadProgram(t *testing.T, typ ebpf.ProgramType, attach ebpf.AttachType, ret int32) *ebpf.Program {
	t.Helper()
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: typ, AttachType: attach, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, ret), asm.Return()}})
	if err != nil {
		t.Fatalf("load %s program: %v", typ, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func programID(t *testing.T, p *ebpf.Program) uint32 {
	t.Helper()
	info, err := p.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := info.ID()
	return uint32(id)
}

func mapID(t *testing.T, m *ebpf.Map) uint32 {
	t.Helper()
	info, err := m.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := info.ID()
	return uint32(id)
}

func ifindex(t *testing.T, name string) int {
	t.Helper()
	i, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return i.Index
}

// cgroupID returns the id of the cgroup at dir: its inode number.
func cgroupID(t *testing.T, dir string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// cgroupPath returns dir's path below the cgroup v2 mount.
func cgroupPath(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if i := slices.Index(f, "-"); i > 0 && i+1 < len(f) && f[i+1] == "cgroup2" {
			if rel, ok := strings.CutPrefix(dir, f[4]); ok {
				return rel
			}
		}
	}
	t.Fatalf("%s is not under the cgroup v2 mount", dir)
	return ""
}

// ensureTracefs mounts tracefs where the kernel's tracepoints are looked up
// when nothing is mounted there, as bpfd does at start.
func ensureTracefs(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/sys/kernel/tracing/events"); err == nil {
		return
	}
	if err := unix.Mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		t.Fatalf("mount tracefs: %v", err)
	}
}

// kernelReports returns want as far as the kernel reports it: kernels
// before 6.6 give no details of perf event links (kprobes, uprobes,
// tracepoints), only their type.
func kernelReports(info *link.Info, want inventory.Attachment) inventory.Attachment {
	if pe := info.PerfEvent(); info.Type == link.PerfEventType && (pe == nil || pe.Type == link.PerfEventUnspecified) {
		return inventory.Attachment{Hook: inventory.HookPerfEvent}
	}
	return want
}
