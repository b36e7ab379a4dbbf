package runtime_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

// tenantPod is a simulated pod on this node, laid out as the kubelet and a
// CNI plugin lay one out: a network namespace with a veth to the node, and a
// process in a cgroup named as the kubelet names the pod's container.
type tenantPod struct {
	veth *testutil.VethPair
	proc *testutil.PodProcess
}

func newTenantPod(t *testing.T) tenantPod {
	t.Helper()
	v := testutil.NewVethPair(t)
	return tenantPod{veth: v, proc: testutil.StartPodProcessIn(t, testutil.CgroupDriverSystemd, "", v.Netns)}
}

// startSpoofedPodProcess starts a process in a cgroup named as the kubelet
// names a container of pod uid, whole chain and all, but below a cgroup
// that is no kubelet's, as a user with a delegated subtree or a container
// with a writable cgroupfs may make one; it returns the process's pid.
func startSpoofedPodProcess(t *testing.T, uid string) int {
	t.Helper()
	dir := testutil.NewCgroup(t)
	for _, e := range []string{"kubepods.slice", "kubepods-burstable.slice",
		"kubepods-burstable-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice",
		"cri-containerd-" + strings.Repeat("0", 56) + testutil.RandomSuffix(8) + ".scope"} {
		dir = filepath.Join(dir, e)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		d := dir
		t.Cleanup(func() { os.Remove(d) })
	}
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd.Process.Pid
}

// netns names the pod's network namespace by its process.
func (p tenantPod) netns() string { return "/proc/" + strconv.Itoa(p.proc.PID) + "/ns/net" }

// TestTenantTCXCountsOwnPodOnly: tenant A's TCX program attaches in A's
// pod's network namespace and counts A's traffic, not B's pod's nor the
// node's.
func TestTenantTCXCountsOwnPodOnly(t *testing.T) {
	testutil.RequireKernelFeature(t, testutil.FeatureTCX)
	e := newEnv(t)
	m := e.open(t)
	a, b := newTenantPod(t), newTenantPod(t)
	ctx := context.Background()

	progs, err := load(ctx, m, "file:tc_counter.bpf.o", runtime.LoadRequest{
		Programs: []runtime.ProgramRequest{{
			Name: "tcx_counter", Kind: progtype.TCX,
			Attach: runtime.TCXAttach{Interface: a.veth.Peer, Netns: a.netns(), Direction: runtime.Ingress},
		}},
		Owner:  runtime.Owner{Namespace: "team-a"},
		Tenant: &runtime.Tenant{Namespace: "team-a", PodUIDs: []string{a.proc.PodUID}},
	})
	if err != nil {
		t.Fatalf("Load for tenant A in A's pod: %v", err)
	}
	p := progs[0]
	if got := tcxProgIDs(t, a.veth.Peer, a.veth.Netns, runtime.Ingress); !slices.Equal(got, []uint32{p.Kernel.ProgramID}) {
		t.Fatalf("A's pod's ingress runs %v, want [%d]", got, p.Kernel.ProgramID)
	}
	for _, where := range []struct{ ifname, netns string }{{b.veth.Peer, b.veth.Netns}, {a.veth.Host, ""}, {b.veth.Host, ""}} {
		if got := tcxProgIDs(t, where.ifname, where.netns, runtime.Ingress); len(got) != 0 {
			t.Errorf("%s (netns %q) runs %v: only A's pod's interface may", where.ifname, where.netns, got)
		}
	}
	pin := mapPin(t, p, "tc_stats")
	a.veth.SendUDP(t, 25)
	eventually(t, "A's 25 UDP packets counted", func() bool { return testutil.ReadU64(t, pin, udp) >= 25 })
	counted := testutil.ReadU64(t, pin, udp)
	// B's pod's traffic both ways, and A's pod's own traffic out (egress,
	// which the program does not see); then 5 more into A's pod, which
	// arrive after the rest and must be all that is added.
	b.veth.SendUDP(t, 40)
	b.veth.SendUDPFromPeer(t, 30)
	a.veth.SendUDPFromPeer(t, 20)
	a.veth.SendUDP(t, 5)
	eventually(t, "A's 5 more UDP packets counted", func() bool { return testutil.ReadU64(t, pin, udp) >= counted+5 })
	if got := testutil.ReadU64(t, pin, udp); got != counted+5 {
		t.Errorf("A's counter went from %d to %d, want %d: it counted others' traffic", counted, got, counted+5)
	}
	if err := m.Unload(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, e, m)
}

// TestTenantUprobeOwnProcessOnly: a uprobe for tenant A on the binary of
// A's container, resolved through its process's root, counts A's calls and
// not those of B, which runs the same binary.
func TestTenantUprobeOwnProcessOnly(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	a, b := newTenantPod(t), newTenantPod(t)
	ctx := context.Background()

	progs, err := load(ctx, m, "file:uprobe_counter.bpf.o", runtime.LoadRequest{
		Programs: []runtime.ProgramRequest{{
			Name: "uprobe_counter", Kind: progtype.Uprobe,
			// The path as the container sees it.
			Attach: runtime.UprobeAttach{Target: testutil.UprobeTargetBinary(t), Offset: testutil.UprobeTargetOffset(t), ContainerPID: a.proc.PID},
		}},
		Owner:  runtime.Owner{Namespace: "team-a"},
		Tenant: &runtime.Tenant{Namespace: "team-a", PodUIDs: []string{a.proc.PodUID}},
	})
	if err != nil {
		t.Fatalf("Load for tenant A on A's container: %v", err)
	}
	pin := mapPin(t, progs[0], "uprobe_calls")
	a.proc.CallUprobeTarget(t, 5)
	b.proc.CallUprobeTarget(t, 9)
	testutil.CallUprobeTarget(t, 11) // the same binary on the node
	if got := testutil.ReadU64(t, pin, 0); got != 5 {
		t.Errorf("uprobe counted %d calls, want A's 5 (not B's 9 nor the node's 11)", got)
	}
	if err := m.Unload(ctx, progs[0].ID); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, e, m)
}

// TestTenantRefusesOutsideItsPods: a tenant-scoped request may attach
// nothing outside the tenant's pods unless granted, and a refusal leaves
// nothing behind.
func TestTenantRefusesOutsideItsPods(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	a, b := newTenantPod(t), newTenantPod(t)
	// A pod of tenant A with hostNetwork: its process is in the node's
	// network namespace.
	hostNet := testutil.StartPodProcess(t, testutil.CgroupDriverCgroupfs, "")
	// A process outside A's pod, in a cgroup named like A's pod's.
	spoof := startSpoofedPodProcess(t, a.proc.PodUID)
	ctx := context.Background()
	tenant := runtime.Tenant{Namespace: "team-a", PodUIDs: []string{a.proc.PodUID, hostNet.PodUID}}
	bin, off := testutil.UprobeTargetBinary(t), testutil.UprobeTargetOffset(t)
	tcx := func(ifname, netns string) runtime.ProgramRequest {
		return runtime.ProgramRequest{Name: "tcx_counter", Kind: progtype.TCX, Attach: runtime.TCXAttach{Interface: ifname, Netns: netns, Direction: runtime.Ingress}}
	}
	uprobe := func(a runtime.UprobeAttach) runtime.ProgramRequest {
		return runtime.ProgramRequest{Name: "uprobe_counter", Kind: progtype.Uprobe, Attach: a}
	}
	tracepoint := runtime.ProgramRequest{Name: "tracepoint_counter", Kind: progtype.Tracepoint, Attach: runtime.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}}

	cases := map[string]struct {
		ref     string
		prog    runtime.ProgramRequest
		grants  []progtype.Kind
		want    error // nil: loads
		mention string
	}{
		"B's pod's netns": {
			ref: "file:tc_counter.bpf.o", prog: tcx(b.veth.Peer, b.netns()), want: runtime.ErrPermission,
			mention: "is in pod " + b.proc.PodUID + ", not a pod of tenant team-a",
		},
		"the node's interface": {
			ref: "file:tc_counter.bpf.o", prog: tcx(a.veth.Host, ""), want: runtime.ErrPermission,
			mention: "name a pod's network namespace by a process of the pod",
		},
		"a netns by path": {
			ref: "file:tc_counter.bpf.o", prog: tcx(a.veth.Peer, a.veth.Netns), want: runtime.ErrPermission,
			mention: "name a pod's network namespace by a process of the pod",
		},
		"a process of no pod": {
			ref: "file:tc_counter.bpf.o", prog: tcx("lo", "/proc/"+strconv.Itoa(os.Getpid())+"/ns/net"), want: runtime.ErrPermission,
			mention: "is in no pod",
		},
		"a hostNetwork pod of the tenant": {
			ref: "file:tc_counter.bpf.o", prog: tcx("lo", "/proc/"+strconv.Itoa(hostNet.PID)+"/ns/net"), want: runtime.ErrPermission,
			mention: "the pod uses the node's network namespace",
		},
		"a tracepoint": {
			ref: "file:tracepoint_counter.bpf.o", prog: tracepoint, want: runtime.ErrPermission,
			mention: "tracepoint for tenant team-a: attaches outside the tenant's pods, and no grant allows it",
		},
		"a granted tracepoint": {
			ref: "file:tracepoint_counter.bpf.o", prog: tracepoint, grants: []progtype.Kind{progtype.Tracepoint},
		},
		"a uprobe on the node's binary": {
			ref: "file:uprobe_counter.bpf.o", prog: uprobe(runtime.UprobeAttach{Target: bin, Offset: off}), want: runtime.ErrPermission,
			mention: "name the container by a process of it",
		},
		"a uprobe in B's container": {
			ref: "file:uprobe_counter.bpf.o", prog: uprobe(runtime.UprobeAttach{Target: bin, Offset: off, ContainerPID: b.proc.PID}), want: runtime.ErrPermission,
			mention: "not a pod of tenant team-a",
		},
		"a uprobe in A's container for B's process": {
			ref: "file:uprobe_counter.bpf.o", prog: uprobe(runtime.UprobeAttach{Target: bin, Offset: off, ContainerPID: a.proc.PID, PID: b.proc.PID}), want: runtime.ErrPermission,
			mention: "is not the container's process",
		},
		"a uprobe in a cgroup named like A's pod's, below another": {
			ref: "file:uprobe_counter.bpf.o", prog: uprobe(runtime.UprobeAttach{Target: bin, Offset: off, ContainerPID: spoof}), want: runtime.ErrPermission,
			mention: "is in no pod",
		},
		"the netns of a process in a cgroup named like A's pod's": {
			ref: "file:tc_counter.bpf.o", prog: tcx("lo", "/proc/"+strconv.Itoa(spoof)+"/ns/net"), want: runtime.ErrPermission,
			mention: "is in no pod",
		},
		"a granted uprobe on the node's binary": {
			ref: "file:uprobe_counter.bpf.o", prog: uprobe(runtime.UprobeAttach{Target: bin, Offset: off}), grants: []progtype.Kind{progtype.Uprobe},
		},
	}
	fds := openFDs(t)
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if tc.prog.Kind == progtype.TCX {
				testutil.RequireKernelFeature(t, testutil.FeatureTCX)
			}
			tn := tenant
			tn.Grants = tc.grants
			progs, err := load(ctx, m, tc.ref, runtime.LoadRequest{
				Programs: []runtime.ProgramRequest{tc.prog},
				Owner:    runtime.Owner{Namespace: "team-a"},
				Tenant:   &tn,
			})
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if err := m.Unload(ctx, progs[0].ID); err != nil {
					t.Fatal(err)
				}
				return
			}
			assertErr(t, err, tc.want, tc.mention)
			assertOnly(t, e, m, fds)
		})
	}
}

// TestTenantRequestValidation: a Tenant that does not name the owner's
// namespace, or no pods, or a pod uid that is none, is refused before
// anything is read.
func TestTenantRequestValidation(t *testing.T) {
	prog := runtime.ProgramRequest{Name: "x", Kind: progtype.Uprobe, Attach: runtime.UprobeAttach{Target: "/bin/true", Function: "main", ContainerPID: 1}}
	uid := "0f0e0d0c-0b0a-4908-8706-050403020100"
	cases := map[string]struct {
		owner   string
		tenant  runtime.Tenant
		mention string
	}{
		"no namespace":        {owner: "", tenant: runtime.Tenant{PodUIDs: []string{uid}}, mention: "tenant: missing namespace"},
		"another namespace":   {owner: "team-b", tenant: runtime.Tenant{Namespace: "team-a", PodUIDs: []string{uid}}, mention: `not the owner's namespace "team-b"`},
		"no pods":             {owner: "team-a", tenant: runtime.Tenant{Namespace: "team-a"}, mention: "no pods"},
		"a pod uid that none": {owner: "team-a", tenant: runtime.Tenant{Namespace: "team-a", PodUIDs: []string{"../../x"}}, mention: "not a pod uid"},
		"an unknown grant":    {owner: "team-a", tenant: runtime.Tenant{Namespace: "team-a", PodUIDs: []string{uid}, Grants: []progtype.Kind{"everything"}}, mention: `grant "everything"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tn := tc.tenant
			req := runtime.LoadRequest{Programs: []runtime.ProgramRequest{prog}, Owner: runtime.Owner{Namespace: tc.owner}, Tenant: &tn}
			assertErr(t, req.Validate(), runtime.ErrInvalid, tc.mention)
		})
	}
}

// TestUprobeLibraryInContainer: a uprobe names a library by name; it is
// found in the maps of the container's process and attached through the
// process's root; a library the process has not mapped is not found.
func TestUprobeLibraryInContainer(t *testing.T) {
	if libc, _ := filepath.Glob("/lib*/*/libc.so.*"); len(libc) == 0 {
		// The VM's userland is static busybox: no process there maps a
		// shared library. The host run of this package covers the test.
		if os.Getenv("BPFD_REQUIRE_KERNEL") == "" {
			t.Fatal("no libc.so under /lib*/*/: this test needs a dynamically linked /bin/sleep")
		}
		t.Skip("the VM's static userland maps no shared library; this test runs on the host")
	}
	e := newEnv(t)
	m := e.open(t)
	ctx := context.Background()
	sleep := exec.Command("/bin/sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	// The dynamic loader maps libc before sleep runs; wait for it.
	pid := sleep.Process.Pid
	eventually(t, "sleep maps libc", func() bool {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/maps")
		return strings.Contains(string(b), "libc.so")
	})
	req := func(lib string) runtime.LoadRequest {
		return runtime.LoadRequest{Programs: []runtime.ProgramRequest{{
			Name: "uprobe_counter", Kind: progtype.Uprobe,
			Attach: runtime.UprobeAttach{Library: lib, Function: "getpid", ContainerPID: pid},
		}}}
	}
	progs, err := load(ctx, m, "file:uprobe_counter.bpf.o", req("libc"))
	if err != nil {
		t.Fatalf("Load on libc of process %d: %v", pid, err)
	}
	if a, ok := progs[0].Attach.(runtime.UprobeAttach); !ok || a.PID != pid {
		t.Errorf("attach %+v: want the pid filter to default to the container's process %d", progs[0].Attach, pid)
	}
	if err := m.Unload(ctx, progs[0].ID); err != nil {
		t.Fatal(err)
	}
	fds := openFDs(t)
	_, err = load(ctx, m, "file:uprobe_counter.bpf.o", req("libnotthere"))
	assertErr(t, err, runtime.ErrHookNotFound, "library libnotthere: not mapped by process "+strconv.Itoa(pid))
	assertOnly(t, e, m, fds)
}
