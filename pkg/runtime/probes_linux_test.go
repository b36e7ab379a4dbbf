package runtime_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

func TestTracepointCountsOpenat(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	ctx := context.Background()

	progs, err := m.Load(ctx, runtime.LoadRequest{
		Reference: "file:tracepoint_counter.bpf.o",
		Programs: []runtime.ProgramRequest{{
			Name:   "tracepoint_counter",
			Kind:   progtype.Tracepoint,
			Attach: runtime.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"},
		}},
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	p := progs[0]
	counts, err := ebpf.LoadPinnedMap(mapPin(t, p, "openat_calls"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer counts.Close()
	pid := uint32(os.Getpid())
	var before uint64
	counts.Lookup(pid, &before) // absent means 0

	const opens = 50
	for range opens {
		f, err := os.Open("/proc/self/stat")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	var after uint64
	if err := counts.Lookup(pid, &after); err != nil {
		t.Fatalf("no openat count for this process (%d): %v", pid, err)
	}
	if after-before < opens {
		t.Fatalf("counted %d openat calls by this process, want at least %d", after-before, opens)
	}
	if err := m.Unload(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, e, m)
}

// probeTarget is a small C program whose function the uprobe test probes.
const probeTarget = `#include <stdlib.h>
#include <stdio.h>
__attribute__((noinline)) int bpfd_probe_target(int x) { __asm__ volatile(""); return x + 1; }
int main(int argc, char **argv) {
	int n = atoi(argv[1]), sum = 0;
	for (int i = 0; i < n; i++) sum += bpfd_probe_target(i);
	printf("%d\n", sum);
	return 0;
}
`

// buildProbeTarget compiles probeTarget with the system's C compiler.
func buildProbeTarget(t *testing.T) string {
	t.Helper()
	cc := "cc"
	if _, err := exec.LookPath(cc); err != nil {
		cc = "clang"
	}
	dir := t.TempDir()
	src, bin := filepath.Join(dir, "target.c"), filepath.Join(dir, "target")
	if err := os.WriteFile(src, []byte(probeTarget), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, cc, "-O1", "-o", bin, src)
	return bin
}

func TestUprobeCountsCalls(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	bin := buildProbeTarget(t)
	ctx := context.Background()

	attach := runtime.UprobeAttach{Target: bin, Function: "bpfd_probe_target"}
	progs, err := m.Load(ctx, runtime.LoadRequest{
		Reference: "file:uprobe_counter.bpf.o",
		Programs: []runtime.ProgramRequest{
			{Name: "uprobe_counter", Kind: progtype.Uprobe, Attach: attach},
			{Name: "uretprobe_counter", Kind: progtype.Uretprobe, Attach: attach},
		},
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	const calls = 7
	run(t, bin, strconv.Itoa(calls))
	pin := mapPin(t, progs[0], "uprobe_calls")
	if got := readU64(t, pin, 0); got != calls {
		t.Errorf("uprobe counted %d calls, want %d", got, calls)
	}
	if got := readU64(t, pin, 1); got != calls {
		t.Errorf("uretprobe counted %d returns, want %d", got, calls)
	}
	if err := m.Unload(ctx, progs[0].ID, progs[1].ID); err != nil {
		t.Fatal(err)
	}
	run(t, bin, strconv.Itoa(calls))
	assertEmpty(t, e, m)
}

// cgroupV2Root returns where the cgroup v2 hierarchy is mounted.
func cgroupV2Root(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		for i, x := range f {
			if x == "-" && i+1 < len(f) && f[i+1] == "cgroup2" {
				return f[4]
			}
		}
	}
	t.Skip("no cgroup v2 hierarchy mounted")
	return ""
}

// newCgroup creates a cgroup under the v2 root, removed at the end.
func newCgroup(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(cgroupV2Root(t), "bpfd-test-"+randomSuffix(8))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	return dir
}

// cgroupUDPHelper moves itself into the cgroup named by BPFD_CGROUP and
// sends BPFD_PACKETS datagrams to itself over loopback.
func cgroupUDPHelper() int {
	procs := filepath.Join(os.Getenv("BPFD_CGROUP"), "cgroup.procs")
	if err := os.WriteFile(procs, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	n, _ := strconv.Atoi(os.Getenv("BPFD_PACKETS"))
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	buf := make([]byte, 64)
	for range n {
		if _, err := c.WriteTo([]byte("bpfd"), c.LocalAddr()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if _, _, err := c.ReadFrom(buf); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

func TestCgroupSKBCountsPackets(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	cg := newCgroup(t)
	ctx := context.Background()

	progs, err := m.Load(ctx, runtime.LoadRequest{
		Reference: "file:cgroup_counter.bpf.o",
		Programs: []runtime.ProgramRequest{
			{Name: "cgroup_ingress_counter", Kind: progtype.Cgroup, Attach: runtime.CgroupAttach{Path: cg}},
			{Name: "cgroup_egress_counter", Kind: progtype.Cgroup, Attach: runtime.CgroupAttach{Path: cg, AttachType: runtime.CgroupInetEgress}},
		},
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := progs[0].Attach.(runtime.CgroupAttach).AttachType; got != runtime.CgroupInetIngress {
		t.Errorf("attach type from the ELF section = %q, want %q", got, runtime.CgroupInetIngress)
	}
	const packets = 6
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=cgroup-udp", "BPFD_CGROUP="+cg, "BPFD_PACKETS="+strconv.Itoa(packets))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper in cgroup: %v\n%s", err, out)
	}
	pin := mapPin(t, progs[0], "cgroup_packets")
	if got := readU64(t, pin, 0); got < packets {
		t.Errorf("ingress counted %d packets, want at least %d", got, packets)
	}
	if got := readU64(t, pin, 1); got < packets {
		t.Errorf("egress counted %d packets, want at least %d", got, packets)
	}
	if err := m.Unload(ctx, progs[0].ID, progs[1].ID); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, e, m)
}
