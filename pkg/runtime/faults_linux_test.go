package runtime_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

// TestLoadRejects feeds Load every bad request the kernel side can get and
// checks each fails with a clear error and leaves nothing behind: no record,
// no pin, no program on the test interfaces, no file descriptor.
func TestLoadRejects(t *testing.T) {
	e := newEnv(t)
	restricted := "file:" + filepath.Join(bytecodeDir, "xdp_counter.bpf.o")
	allowed := map[string][]progtype.Kind{restricted: {progtype.TC, progtype.TCX}}
	m := e.open(t)
	v := newVethPair(t)
	bin := testutil.UprobeTargetBinary(t)
	cg := testutil.NewCgroup(t)
	notNetns := filepath.Join(t.TempDir(), "not-a-netns")
	if err := os.WriteFile(notNetns, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	xdp := func(a runtime.XDPAttach) []runtime.ProgramRequest {
		return []runtime.ProgramRequest{{Name: "xdp_counter", Kind: progtype.XDP, Attach: a}}
	}
	peer := runtime.XDPAttach{Interface: v.Peer, Netns: v.Netns}
	cases := map[string]struct {
		req       fileLoad
		want      error
		fragments []string
	}{
		"no bytecode": {
			req:  fileLoad{"", runtime.LoadRequest{Programs: xdp(peer)}},
			want: runtime.ErrInvalid, fragments: []string{"bytecode: missing"},
		},
		"owner uid not the requester's": {
			req:  fileLoad{"file:xdp_counter.bpf.o", runtime.LoadRequest{Programs: xdp(peer), Requester: runtime.Requester{UID: 1000}, Owner: runtime.Owner{UID: 1001}}},
			want: runtime.ErrInvalid, fragments: []string{"owner: uid 1001 is not the requester's (1000)"},
		},
		"no programs": {
			req:  fileLoad{"file:xdp_counter.bpf.o", runtime.LoadRequest{}},
			want: runtime.ErrInvalid, fragments: []string{"none requested"},
		},
		"program requested twice": {
			req:  fileLoad{"file:xdp_counter.bpf.o", runtime.LoadRequest{Programs: append(xdp(peer), xdp(peer)...)}},
			want: runtime.ErrInvalid, fragments: []string{"program xdp_counter: requested twice"},
		},
		"unknown program": {
			req: fileLoad{"file:xdp_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
				{Name: "nope", Kind: progtype.XDP, Attach: peer}}}},
			want: runtime.ErrProgramNotFound, fragments: []string{"program nope: not in xdp_counter.bpf.o (programs: xdp_counter)"},
		},
		"kind the program is not": {
			req: fileLoad{"file:xdp_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
				{Name: "xdp_counter", Kind: progtype.TC, Attach: runtime.TCAttach{Interface: v.Host, Direction: runtime.Ingress}}}}},
			want: runtime.ErrInvalid, fragments: []string{"program xdp_counter: is of kind xdp", "not tc"},
		},
		"attach spec of another kind": {
			req: fileLoad{"file:xdp_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
				{Name: "xdp_counter", Kind: progtype.XDP, Attach: runtime.TCAttach{Interface: v.Host, Direction: runtime.Ingress}}}}},
			want: runtime.ErrInvalid, fragments: []string{"does not attach xdp programs"},
		},
		"no attach spec": {
			req:  fileLoad{"file:xdp_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{{Name: "xdp_counter", Kind: progtype.XDP}}}},
			want: runtime.ErrInvalid, fragments: []string{"attach spec: missing"},
		},
		"kind not allowed by the policy rule": {
			req:  fileLoad{restricted, runtime.LoadRequest{Programs: xdp(peer)}},
			want: runtime.ErrPermission, fragments: []string{`kind xdp not allowed by policy rule "test-rule" (allows tc or tcx)`},
		},
		"missing interface": {
			req:  fileLoad{"file:xdp_counter.bpf.o", runtime.LoadRequest{Programs: xdp(runtime.XDPAttach{Interface: "bpfdnope0", Netns: v.Netns})}},
			want: runtime.ErrHookNotFound, fragments: []string{"interface bpfdnope0 in netns " + v.Netns},
		},
		"missing netns": {
			req:  fileLoad{"file:xdp_counter.bpf.o", runtime.LoadRequest{Programs: xdp(runtime.XDPAttach{Interface: v.Peer, Netns: "/run/netns/bpfd-no-such-ns"})}},
			want: runtime.ErrHookNotFound, fragments: []string{"netns /run/netns/bpfd-no-such-ns"},
		},
		"netns path that is no namespace": {
			req:  fileLoad{"file:xdp_counter.bpf.o", runtime.LoadRequest{Programs: xdp(runtime.XDPAttach{Interface: v.Peer, Netns: notNetns})}},
			want: runtime.ErrInvalid, fragments: []string{"not a network namespace"},
		},
		"bad interface name": {
			req:  fileLoad{"file:xdp_counter.bpf.o", runtime.LoadRequest{Programs: xdp(runtime.XDPAttach{Interface: "a/b"})}},
			want: runtime.ErrInvalid, fragments: []string{`interface "a/b": not a valid name`},
		},
		"unknown XDP mode": {
			req:  fileLoad{"file:xdp_counter.bpf.o", runtime.LoadRequest{Programs: xdp(runtime.XDPAttach{Interface: v.Peer, Netns: v.Netns, Mode: "turbo"})}},
			want: runtime.ErrInvalid, fragments: []string{`xdp mode "turbo"`},
		},
		"priority above range": {
			req:  fileLoad{"file:xdp_counter.bpf.o", runtime.LoadRequest{Programs: xdp(runtime.XDPAttach{Interface: v.Peer, Netns: v.Netns, Priority: 1001})}},
			want: runtime.ErrInvalid, fragments: []string{"priority 1001: out of range 1-1000"},
		},
		"negative priority": {
			req: fileLoad{"file:tc_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
				{Name: "tc_counter", Kind: progtype.TC, Attach: runtime.TCAttach{Interface: v.Host, Direction: runtime.Ingress, Priority: -1}}}}},
			want: runtime.ErrInvalid, fragments: []string{"priority -1: out of range"},
		},
		"missing direction": {
			req: fileLoad{"file:tc_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
				{Name: "tcx_counter", Kind: progtype.TCX, Attach: runtime.TCXAttach{Interface: v.Host}}}}},
			want: runtime.ErrInvalid, fragments: []string{`direction ""`},
		},
		"missing tracepoint": {
			req: fileLoad{"file:tracepoint_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
				{Name: "tracepoint_counter", Kind: progtype.Tracepoint, Attach: runtime.TracepointAttach{Tracepoint: "syscalls/sys_enter_bpfd_nope"}}}}},
			want: runtime.ErrHookNotFound, fragments: []string{"tracepoint syscalls/sys_enter_bpfd_nope"},
		},
		"malformed tracepoint": {
			req: fileLoad{"file:tracepoint_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
				{Name: "tracepoint_counter", Kind: progtype.Tracepoint, Attach: runtime.TracepointAttach{Tracepoint: "sys_enter_openat"}}}}},
			want: runtime.ErrInvalid, fragments: []string{`tracepoint "sys_enter_openat": want group/name`},
		},
		"missing uprobe binary": {
			req: fileLoad{"file:uprobe_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
				{Name: "uprobe_counter", Kind: progtype.Uprobe, Attach: runtime.UprobeAttach{Target: "/nonexistent/bpfd-target", Function: "main"}}}}},
			want: runtime.ErrHookNotFound, fragments: []string{"uprobe target /nonexistent/bpfd-target"},
		},
		"missing uprobe symbol": {
			req: fileLoad{"file:uprobe_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
				{Name: "uprobe_counter", Kind: progtype.Uprobe, Attach: runtime.UprobeAttach{Target: bin, Function: "bpfd_no_such_function"}}}}},
			want: runtime.ErrHookNotFound, fragments: []string{"symbol bpfd_no_such_function"},
		},
		"relative uprobe target": {
			req: fileLoad{"file:uprobe_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
				{Name: "uprobe_counter", Kind: progtype.Uprobe, Attach: runtime.UprobeAttach{Target: "bin/true", Function: "main"}}}}},
			want: runtime.ErrInvalid, fragments: []string{"not an absolute path"},
		},
		"uprobe on a missing process": {
			req: fileLoad{"file:uprobe_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
				{Name: "uprobe_counter", Kind: progtype.Uprobe, Attach: runtime.UprobeAttach{Target: bin, Offset: testutil.UprobeTargetOffset(t), PID: 1 << 30}}}}},
			want: runtime.ErrHookNotFound, fragments: []string{"no such process"},
		},
		"kretprobe with an offset": {
			req: fileLoad{"file:kprobe_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
				{Name: "kretprobe_counter", Kind: progtype.Kretprobe, Attach: runtime.KprobeAttach{Function: "do_unlinkat", Offset: 4}}}}},
			want: runtime.ErrInvalid, fragments: []string{"a kretprobe takes no offset"},
		},
		"fentry on a missing function": {
			req: fileLoad{"file:fentry_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
				{Name: "fentry_counter", Kind: progtype.Fentry, Attach: runtime.FentryAttach{Function: "bpfd_no_such_function"}}}}},
			want: runtime.ErrHookNotFound, fragments: []string{"kernel function bpfd_no_such_function: not in the kernel's BTF"},
		},
		"missing cgroup": {
			req: fileLoad{"file:cgroup_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
				{Name: "cgroup_ingress_counter", Kind: progtype.Cgroup, Attach: runtime.CgroupAttach{Path: cg + "-nope"}}}}},
			want: runtime.ErrHookNotFound, fragments: []string{"cgroup " + cg + "-nope"},
		},
		"cgroup hook of another program type": {
			req: fileLoad{"file:cgroup_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
				{Name: "cgroup_ingress_counter", Kind: progtype.Cgroup, Attach: runtime.CgroupAttach{Path: cg, AttachType: runtime.CgroupInet4Connect}}}}},
			want: runtime.ErrInvalid, fragments: []string{"does not run at cgroup hook inet4_connect"},
		},
		"unknown cgroup attach type": {
			req: fileLoad{"file:cgroup_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
				{Name: "cgroup_ingress_counter", Kind: progtype.Cgroup, Attach: runtime.CgroupAttach{Path: cg, AttachType: "sideways"}}}}},
			want: runtime.ErrInvalid, fragments: []string{`cgroup attach type "sideways"`},
		},
		"global data nobody declares": {
			req: fileLoad{"file:xdp_verdict.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
				{Name: "xdp_verdict", Kind: progtype.XDP, Attach: peer}}, Globals: map[string][]byte{"nope": {1, 0, 0, 0}}}},
			want: runtime.ErrInvalid, fragments: []string{"global data nope: not declared by xdp_verdict.bpf.o (declared: packets, verdict)"},
		},
		"global data of the wrong size": {
			req: fileLoad{"file:xdp_verdict.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
				{Name: "xdp_verdict", Kind: progtype.XDP, Attach: peer}}, Globals: map[string][]byte{"verdict": {1, 0}}}},
			want: runtime.ErrInvalid, fragments: []string{"global data verdict: 2 bytes given, xdp_verdict.bpf.o declares 4"},
		},
		"missing map owner": {
			req:  fileLoad{"file:xdp_counter.bpf.o", runtime.LoadRequest{Programs: xdp(peer), MapOwnerID: 4242}},
			want: runtime.ErrProgramNotFound, fragments: []string{"map owner 4242: program not found"},
		},
		"bad metadata": {
			req:  fileLoad{"file:xdp_counter.bpf.o", runtime.LoadRequest{Programs: xdp(peer), Metadata: map[string]string{"a=b": "c"}}},
			want: runtime.ErrInvalid, fragments: []string{`metadata key "a=b"`},
		},
		"program the verifier rejects": {
			req: fileLoad{"file:" + filepath.Join(testdataDir, "verifier_reject.bpf.o"), runtime.LoadRequest{Programs: []runtime.ProgramRequest{
				{Name: "xdp_unchecked", Kind: progtype.XDP, Attach: peer}}}},
			want: runtime.ErrVerifier, fragments: []string{"program xdp_unchecked: rejected by the verifier", "verifier log tail:", "invalid access to packet"},
		},
		"attach failing after another program attached": {
			// tc_egress_counter attaches first; native... offload XDP on a veth
			// then fails, and the TC filter must go again.
			req: fileLoad{"file:packet_counters.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
				{Name: "tc_egress_counter", Kind: progtype.TC, Attach: runtime.TCAttach{Interface: v.Peer, Netns: v.Netns, Direction: runtime.Egress}},
				{Name: "xdp_ingress_counter", Kind: progtype.XDP, Attach: runtime.XDPAttach{Interface: v.Peer, Netns: v.Netns, Mode: runtime.XDPModeOffload}},
			}}},
			fragments: []string{"program xdp_ingress_counter: attach xdp to interface " + v.Peer},
		},
	}
	ctx := context.Background()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			fds := openFDs(t)
			var bc *runtime.Bytecode
			if tc.req.ref != "" {
				var err error
				if bc, err = readBytecode(tc.req.ref, allowed[tc.req.ref]...); err != nil {
					t.Fatal(err)
				}
			}
			_, err := m.Load(ctx, tc.req.req, bc)
			if tc.want != nil {
				assertErr(t, err, tc.want, tc.fragments...)
			} else {
				if err == nil {
					t.Fatal("Load succeeded, want an error")
				}
				for _, f := range tc.fragments {
					if !strings.Contains(err.Error(), f) {
						t.Fatalf("error %q does not mention %q", err, f)
					}
				}
			}
			t.Logf("error: %v", err)
			assertOnly(t, e, m, fds)
			assertNoAttachments(t, v)
		})
	}
}

var testdataDir, _ = filepath.Abs("testdata")

// assertNoAttachments checks that no program is attached to the pair's
// interfaces: XDP, tc filters and, on kernels that have it, TCX.
func assertNoAttachments(t *testing.T, v *vethPair) {
	t.Helper()
	tcx := testutil.KernelHas(testutil.FeatureTCX) == nil
	for _, end := range []struct{ ifname, netns string }{{v.Host, ""}, {v.Peer, v.Netns}} {
		if id := xdpProgID(t, end.ifname, end.netns); id != 0 {
			t.Errorf("%s runs XDP program %d", end.ifname, id)
		}
		for _, dir := range []runtime.Direction{runtime.Ingress, runtime.Egress} {
			if ids := tcFilterProgIDs(t, end.ifname, end.netns, dir); len(ids) != 0 {
				t.Errorf("%s %s has TC filters running %v", end.ifname, dir, ids)
			}
			if !tcx {
				continue
			}
			if ids := tcxProgIDs(t, end.ifname, end.netns, dir); len(ids) != 0 {
				t.Errorf("%s %s has TCX programs %v", end.ifname, dir, ids)
			}
		}
	}
}

func TestUnloadAndGetUnknownID(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	ctx := context.Background()
	progs, err := load(ctx, m, "file:tracepoint_counter.bpf.o", runtime.LoadRequest{
		Programs: []runtime.ProgramRequest{{Name: "tracepoint_counter", Kind: progtype.Tracepoint, Attach: runtime.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := progs[0].ID
	_, err = m.Get(ctx, 999)
	assertErr(t, err, runtime.ErrProgramNotFound, "program 999")
	// One unknown id: nothing is unloaded.
	err = m.Unload(ctx, id, 999)
	assertErr(t, err, runtime.ErrProgramNotFound, "program 999")
	assertOnly(t, e, m, -1, id)
	if err := m.Unload(ctx, id); err != nil {
		t.Fatal(err)
	}
	err = m.Unload(ctx, id)
	assertErr(t, err, runtime.ErrProgramNotFound, "program "+id.String())
	assertEmpty(t, e, m)
}

// TestXDPTakenByAnotherLoader checks that an interface whose XDP hook holds
// a program bpfd did not attach is refused, naming that program.
func TestXDPTakenByAnotherLoader(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	v := newVethPair(t)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.XDP,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	ifindex := netLink(t, v.Host, "").Attrs().Index
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	info, _ := prog.Info()
	kid, _ := info.ID()

	fds := openFDs(t)
	_, err = load(context.Background(), m, "file:xdp_counter.bpf.o", runtime.LoadRequest{
		Programs: []runtime.ProgramRequest{{Name: "xdp_counter", Kind: progtype.XDP, Attach: runtime.XDPAttach{Interface: v.Host}}},
	})
	assertErr(t, err, runtime.ErrConflict, "interface "+v.Host+" already has an XDP program (kernel id "+itoa(uint32(kid))+"), not attached by bpfd")
	assertOnly(t, e, m, fds)
	if got := xdpProgID(t, v.Host, ""); got != uint32(kid) {
		t.Fatalf("interface runs %d, want the other loader's %d", got, kid)
	}
}

// TestOpenUnwritableStateDir opens a Manager on a read-only file system.
func TestOpenUnwritableStateDir(t *testing.T) {
	e := newEnv(t)
	ro := testutil.Tmpfs(t, "64k", unix.MS_RDONLY)
	_, err := runtime.Open(context.Background(), runtime.Options{StateDir: filepath.Join(ro, "state"), BPFFS: e.bpffs})
	if err == nil || !errors.Is(err, unix.EROFS) || !strings.Contains(err.Error(), "state dir "+filepath.Join(ro, "state")) {
		t.Fatalf("Open on a read-only state dir: %v, want a read-only file system error naming the dir", err)
	}
	var fs unix.Statfs_t
	if unix.Statfs(e.bpffs, &fs) == nil && fs.Type == unix.BPF_FS_MAGIC {
		t.Fatal("Open mounted the bpffs although it failed")
	}
}

// TestFullStateDir fills the state dir's file system and loads until a
// load fails for want of space: the failure leaves no pin, attachment or
// descriptor, programs loaded before stay, and once there is space again
// the store holds exactly those.
func TestFullStateDir(t *testing.T) {
	e := newEnv(t)
	small := testutil.Tmpfs(t, "256k", 0)
	e.stateDir = filepath.Join(small, "state")
	m := e.open(t)
	ctx := context.Background()
	req := fileLoad{"file:tracepoint_counter.bpf.o", runtime.LoadRequest{
		Programs: []runtime.ProgramRequest{{Name: "tracepoint_counter", Kind: progtype.Tracepoint, Attach: runtime.TracepointAttach{Tracepoint: "syscalls/sys_enter_getpid"}}},
	}}
	filler := filepath.Join(small, "filler")
	testutil.Fill(t, filler)

	fds := openFDs(t)
	var ids []runtime.ID
	var err error
	for range 200 {
		var progs []runtime.Program
		if progs, err = load(ctx, m, req.ref, req.req); err != nil {
			break
		}
		ids = append(ids, progs[0].ID)
	}
	if !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("Load on a full state dir: %v, want no space left", err)
	}
	t.Logf("%d loads fit; then: %v", len(ids), err)
	// Fewer is no leak: an object an earlier test dropped may be closed
	// by its finalizer meanwhile.
	if got := openFDs(t); got > fds {
		t.Errorf("%d file descriptors open, want at most %d", got, fds)
	}
	if diff := cmp.Diff(idNames(ids), e.pinDirs(t), cmpopts.EquateEmpty(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("pin directories (-want +got):\n%s", diff)
	}

	os.Remove(filler)
	if err := m.Unload(ctx, ids...); err != nil {
		t.Fatalf("Unload after freeing space: %v", err)
	}
	assertEmpty(t, e, m)
}

func idNames(ids []runtime.ID) []string {
	var s []string
	for _, id := range ids {
		s = append(s, id.String())
	}
	return s
}

func itoa(n uint32) string { return runtime.ID(n).String() }

// TestPinFailureUnwinds makes pinning fail after the first program of a
// request is attached (a pin already sits where the second program's map
// goes; a full bpffs cannot be made, it has no size limit): it is
// detached, the pins and records removed.
func TestPinFailureUnwinds(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	v := newVethPair(t)
	// Ids start at 1 in a fresh store: the second program will be 2.
	squatter, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SocketFilter, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Close()
	if err := os.MkdirAll(filepath.Join(e.bpffs, "2", "maps"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := squatter.Pin(filepath.Join(e.bpffs, "2", "maps", "packet_stats")); err != nil {
		t.Fatal(err)
	}
	// A tcx program attaches with a link of its own before the XDP
	// program's maps are pinned. Without TCX a tc program takes its place,
	// which joins its chain only after every map is pinned.
	ref, first := "file:packet_counters.bpf.o", runtime.ProgramRequest{Name: "tc_egress_counter", Kind: progtype.TCX, Attach: runtime.TCXAttach{Interface: v.Peer, Netns: v.Netns, Direction: runtime.Egress}}
	if !kernelHasTCX(t) {
		first = runtime.ProgramRequest{Name: "tc_egress_counter", Kind: progtype.TC, Attach: runtime.TCAttach{Interface: v.Peer, Netns: v.Netns, Direction: runtime.Egress}}
	}

	fds := openFDs(t)
	_, err = load(context.Background(), m, ref, runtime.LoadRequest{Programs: []runtime.ProgramRequest{
		first,
		{Name: "xdp_ingress_counter", Kind: progtype.XDP, Attach: runtime.XDPAttach{Interface: v.Peer, Netns: v.Netns}},
	}})
	if err == nil || !strings.Contains(err.Error(), "program xdp_ingress_counter: map packet_stats: pin: ") {
		t.Fatalf("Load = %v, want the second program's map pin to fail", err)
	}
	t.Logf("error: %v", err)
	assertOnly(t, e, m, fds)
	assertNoAttachments(t, v)
}
