package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/bpfd-dev/bpfd/internal/testing/testimage"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// udp is the index of UDP packets in the counters' per-protocol maps.
const udp = uint32(17)

// TestXDPThroughAPI loads the signed XDP counter through the API onto the
// peer of a veth pair in a namespace and watches it count real packets; a
// second program joins it on the interface's chain; the program survives a
// daemon restart; unloading removes it.
func TestXDPThroughAPI(t *testing.T) {
	td := newTestDaemon(t)
	v := testutil.NewVethPair(t)
	ref := td.image(t, "xdp", true, "xdp_counter.bpf.o")
	ctx := context.Background()

	progs := td.mustLoad(t, ref, xdpProg("xdp_counter", v.Peer, v.Netns))
	p := progs[0]
	digest := strings.SplitN(ref, "@", 2)[1]
	wantProv := &pb.Provenance{Reference: ref, Origin: "oci:" + filepath.Join(td.images, "xdp"), Digest: digest, Signer: testimage.Fingerprint(t, td.key.pub), Rule: "images", PolicyFingerprint: td.d.chain.PolicyFingerprint()}
	if diff := cmp.Diff(wantProv, p.GetProvenance(), protocmp.Transform()); diff != "" {
		t.Errorf("provenance (-want +got):\n%s", diff)
	}
	// Alone on its hook it runs on its own: no dispatcher mode, its own
	// kernel program.
	if p.GetKernel().GetProgramId() == 0 || p.GetKernel().GetName() != "xdp_counter" || p.GetHook().GetDispatcherMode() != pb.DispatcherMode_DISPATCHER_MODE_UNSPECIFIED || p.GetPinPath() != filepath.Join(td.cfg.BpffsDir, strconv.FormatUint(p.GetId(), 10)) {
		t.Errorf("program %v: want its own kernel program, no dispatcher and its pin dir", p)
	}
	if p.GetLoadedBy().GetUid() != 0 || p.GetLoadedBy().GetPid() != int32(os.Getpid()) {
		t.Errorf("loaded by %v, want this process (uid 0, pid %d)", p.GetLoadedBy(), os.Getpid())
	}

	v.SendUDP(t, 20)
	pin := mapPin(t, p, "xdp_stats")
	eventually(t, "20 UDP packets counted", func() bool { return testutil.ReadU64(t, pin, udp) >= 20 })

	audit := td.lastAudit(t, "load")
	for k, want := range map[string]any{"result": "ok", "reference": ref, "digest": digest, "decision": "allow", "rule": "images", "signer": testimage.Fingerprint(t, td.key.pub), "uid": float64(0), "pid": float64(os.Getpid())} {
		if audit[k] != want {
			t.Errorf("audit %s = %v, want %v", k, audit[k], want)
		}
	}

	// A second program on the interface runs before the first (priority
	// 100 < 500) in the hook's chain; both count each packet.
	second := xdpProg("xdp_counter", v.Peer, v.Netns)
	second.GetAttach().GetXdp().Priority = 100
	p2 := td.mustLoad(t, ref, second)[0]
	if p2.GetHook().GetPosition() != 0 || p2.GetHook().GetDispatcherMode() == pb.DispatcherMode_DISPATCHER_MODE_UNSPECIFIED {
		t.Errorf("second program's hook %v: want position 0 of a dispatcher chain", p2.GetHook())
	}
	pin2 := mapPin(t, p2, "xdp_stats")
	n1 := testutil.ReadU64(t, pin, udp)
	v.SendUDP(t, 10)
	eventually(t, "both programs to count 10 packets", func() bool { return testutil.ReadU64(t, pin, udp) >= n1+10 && testutil.ReadU64(t, pin2, udp) >= 10 })
	td.unload(t, p2.GetId())

	// A restart adopts the program and its chain without reloading: it
	// keeps counting under the same id and kernel program.
	before, err := td.client.Get(ctx, &pb.GetRequest{Id: p.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	td.restart(t)
	got, err := td.client.Get(ctx, &pb.GetRequest{Id: p.GetId()})
	if err != nil {
		t.Fatalf("Get after restart: %v", err)
	}
	if was, is := before.GetProgram().GetKernel().GetProgramId(), got.GetProgram().GetKernel().GetProgramId(); was != is {
		t.Errorf("after restart kernel program %d, want %d", is, was)
	}
	n := testutil.ReadU64(t, pin, udp)
	v.SendUDP(t, 5)
	eventually(t, "counting after the restart", func() bool { return testutil.ReadU64(t, pin, udp) >= n+5 })

	td.unload(t, p.GetId())
	if kernelHasProgram(got.GetProgram().GetKernel().GetProgramId()) {
		t.Error("the kernel still has the program after Unload")
	}
	if _, err := os.Stat(p.GetPinPath()); !os.IsNotExist(err) {
		t.Errorf("pin dir after Unload: %v", err)
	}
	audit = td.lastAudit(t, "unload")
	// The reference names the digest already: the artifact is the reference.
	if diff := cmp.Diff([]uint64{p.GetId()}, numbersOf(audit["ids"])); diff != "" || audit["result"] != "ok" || !slices.Equal(stringsOf(audit["artifacts"]), []string{ref}) {
		t.Errorf("unload audit line %v", audit)
	}
}

// TestChainThroughAPI puts three programs on one XDP hook and three on one
// TC hook through the API, with priorities and proceed-on sets, and checks
// what Load, List and Get report and what real traffic shows: each chain
// runs by priority, and its first program proceeds on its own verdict while
// the second ends the chain with it.
func TestChainThroughAPI(t *testing.T) {
	td := newTestDaemon(t)
	v := testutil.NewVethPair(t)
	ctx := context.Background()
	type kit struct {
		counter, stopper *pb.LoadProgram // loaded from counterRef, stopperRef
		counterRef       string
		stopperRef       string
		global           string
		stop             byte
		counterMap       string
		attach           func(p *pb.LoadProgram, prio int32, proceedOn ...string) *pb.LoadProgram
	}
	xdp := kit{
		counterRef: td.image(t, "xdp-counter", true, "xdp_counter.bpf.o"), stopperRef: td.image(t, "xdp-verdict", true, "xdp_verdict.bpf.o"),
		counter: xdpProg("xdp_counter", v.Peer, v.Netns), stopper: xdpProg("xdp_verdict", v.Peer, v.Netns),
		global: "verdict", stop: 1, counterMap: "xdp_stats",
		attach: func(p *pb.LoadProgram, prio int32, proceedOn ...string) *pb.LoadProgram {
			p = proto.Clone(p).(*pb.LoadProgram)
			x := p.GetAttach().GetXdp()
			x.Priority = prio
			for _, n := range proceedOn {
				a, err := pb.ParseXdpAction(n)
				if err != nil {
					t.Fatal(err)
				}
				x.ProceedOn = append(x.ProceedOn, a)
			}
			return p
		},
	}
	tc := kit{
		counterRef: td.image(t, "tc-counter", true, "tc_counter.bpf.o"), stopperRef: td.image(t, "tc-verdict", true, "tc_verdict.bpf.o"),
		counter: tcProg("tc_counter", v.Peer, v.Netns, pb.Direction_DIRECTION_INGRESS), stopper: tcProg("tc_verdict", v.Peer, v.Netns, pb.Direction_DIRECTION_INGRESS),
		global: "action", stop: 2, counterMap: "tc_stats",
		attach: func(p *pb.LoadProgram, prio int32, proceedOn ...string) *pb.LoadProgram {
			p = proto.Clone(p).(*pb.LoadProgram)
			x := p.GetAttach().GetTc()
			x.Priority = prio
			for _, n := range proceedOn {
				a, err := pb.ParseTcAction(n)
				if err != nil {
					t.Fatal(err)
				}
				x.ProceedOn = append(x.ProceedOn, a)
			}
			return p
		},
	}
	for name, k := range map[string]kit{"xdp": xdp, "tc": tc} {
		t.Run(name, func(t *testing.T) {
			stopper := func(prio int32, proceedOn ...string) *pb.Program {
				return td.mustLoadReq(t, &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: k.stopperRef},
					Programs: []*pb.LoadProgram{k.attach(k.stopper, prio, proceedOn...)}, GlobalData: map[string][]byte{k.global: {k.stop, 0, 0, 0}}})[0]
			}
			counter := td.mustLoad(t, k.counterRef, k.attach(k.counter, 30))[0]
			first := stopper(10, name2(name, "pass", "ok"), name2(name, "drop", "shot"))
			second := stopper(20)

			resp, err := td.client.List(ctx, &pb.ListRequest{Type: first.GetType()})
			if err != nil {
				t.Fatal(err)
			}
			got := map[uint64]string{}
			for _, p := range resp.GetPrograms() {
				h := p.GetHook()
				got[p.GetId()] = fmt.Sprintf("%d %d %s %v", h.GetPosition(), h.GetPriority(), h.GetDispatcherMode(), proceedOnNames(p))
			}
			mode := first.GetHook().GetDispatcherMode()
			want := map[uint64]string{
				first.GetId():   fmt.Sprintf("0 10 %s %v", mode, map[string][]string{"xdp": {"drop", "pass"}, "tc": {"ok", "shot"}}[name]),
				second.GetId():  fmt.Sprintf("1 20 %s %v", mode, map[string][]string{"xdp": {"pass", "dispatcher_return"}, "tc": {"ok", "pipe", "dispatcher_return"}}[name]),
				counter.GetId(): fmt.Sprintf("2 30 %s %v", mode, map[string][]string{"xdp": {"pass", "dispatcher_return"}, "tc": {"ok", "pipe", "dispatcher_return"}}[name]),
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("hook positions (-want +got):\n%s", diff)
			}

			a0, b0 := testutil.ReadU64(t, mapPin(t, first, ".bss"), uint32(0)), testutil.ReadU64(t, mapPin(t, second, ".bss"), uint32(0))
			v.SendUDP(t, 10)
			eventually(t, "both stoppers to count every packet", func() bool {
				a, b := testutil.ReadU64(t, mapPin(t, first, ".bss"), uint32(0))-a0, testutil.ReadU64(t, mapPin(t, second, ".bss"), uint32(0))-b0
				return a >= 10 && a == b
			})
			if n := testutil.ReadU64(t, mapPin(t, counter, k.counterMap), udp); n != 0 {
				t.Errorf("the counter after the chain's end counted %d packets", n)
			}
			td.unload(t, second.GetId())
			v.SendUDP(t, 10)
			eventually(t, "the counter to count once the second stopper left", func() bool {
				return testutil.ReadU64(t, mapPin(t, counter, k.counterMap), udp) == 10
			})
			td.unload(t, first.GetId(), counter.GetId())
		})
	}
}

// name2 picks the XDP or the TC name of an action.
func name2(kind, xdp, tc string) string {
	if kind == "xdp" {
		return xdp
	}
	return tc
}

// proceedOnNames returns the proceed-on set of an XDP or TC program.
func proceedOnNames(p *pb.Program) []string {
	var names []string
	for _, a := range p.GetAttach().GetXdp().GetProceedOn() {
		names = append(names, a.Name())
	}
	for _, a := range p.GetAttach().GetTc().GetProceedOn() {
		names = append(names, a.Name())
	}
	return names
}

// TestTCAndTCXThroughAPI loads tc_counter with clsact and tcx_counter with
// a TCX link on the peer's ingress; both count the same packets into their
// shared map.
func TestTCAndTCXThroughAPI(t *testing.T) {
	td := newTestDaemon(t)
	v := testutil.NewVethPair(t)
	ref := td.image(t, "tc", true, "tc_counter.bpf.o")

	tc := td.mustLoad(t, ref, tcProg("tc_counter", v.Peer, v.Netns, pb.Direction_DIRECTION_INGRESS))[0]
	v.SendUDP(t, 15)
	eventually(t, "15 UDP packets counted by tc", func() bool { return testutil.ReadU64(t, mapPin(t, tc, "tc_stats"), udp) >= 15 })
	if tc.GetHook().GetHook() == "" {
		t.Errorf("tc program without a hook position: %v", tc)
	}

	t.Run("tcx", func(t *testing.T) {
		testutil.RequireKernelFeature(t, testutil.FeatureTCX)
		tcx := td.mustLoad(t, ref, tcxProg("tcx_counter", v.Peer, v.Netns, pb.Direction_DIRECTION_INGRESS))[0]
		pin := mapPin(t, tcx, "tc_stats")
		n := testutil.ReadU64(t, pin, udp)
		v.SendUDP(t, 10)
		// Each packet passes both programs, each counting in its own map.
		eventually(t, "10 UDP packets counted by tcx", func() bool { return testutil.ReadU64(t, pin, udp) >= n+10 })
		td.unload(t, tcx.GetId())
	})
	td.unload(t, tc.GetId())
}

// TestTracepointThroughAPI counts this process's openat calls.
func TestTracepointThroughAPI(t *testing.T) {
	td := newTestDaemon(t)
	ref := td.image(t, "tracepoint", true, "tracepoint_counter.bpf.o")
	p := td.mustLoad(t, ref, tracepointProg("tracepoint_counter", "syscalls/sys_enter_openat"))[0]
	pin := mapPin(t, p, "openat_calls")
	pid := uint32(os.Getpid())
	before := testutil.ReadU64(t, pin, pid)
	const opens = 30
	for range opens {
		f, err := os.Open("/proc/self/stat")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if got := testutil.ReadU64(t, pin, pid) - before; got < opens {
		t.Errorf("counted %d openat calls, want at least %d", got, opens)
	}
	td.unload(t, p.GetId())
}

// TestUprobeThroughAPI probes a function of this test binary, by file
// offset, at entry and return.
func TestUprobeThroughAPI(t *testing.T) {
	td := newTestDaemon(t)
	ref := td.image(t, "uprobe", true, "uprobe_counter.bpf.o")
	attach := &pb.AttachSpec{Spec: &pb.AttachSpec_Uprobe{Uprobe: &pb.UprobeAttach{Target: testutil.UprobeTargetBinary(t), Offset: testutil.UprobeTargetOffset(t)}}}
	progs := td.mustLoad(t, ref,
		&pb.LoadProgram{Name: "uprobe_counter", Type: pb.ProgramType_PROGRAM_TYPE_UPROBE, Attach: attach},
		&pb.LoadProgram{Name: "uretprobe_counter", Type: pb.ProgramType_PROGRAM_TYPE_URETPROBE, Attach: attach},
	)
	if progs[1].GetMapOwnerId() != progs[0].GetId() {
		t.Errorf("uretprobe map owner %d, want the uprobe %d (same object)", progs[1].GetMapOwnerId(), progs[0].GetId())
	}
	const calls = 7
	testutil.CallUprobeTarget(t, calls)
	pin := mapPin(t, progs[0], "uprobe_calls")
	if got := testutil.ReadU64(t, pin, uint32(0)); got != calls {
		t.Errorf("uprobe counted %d calls, want %d", got, calls)
	}
	if got := testutil.ReadU64(t, pin, uint32(1)); got != calls {
		t.Errorf("uretprobe counted %d returns, want %d", got, calls)
	}
	td.unload(t, ids(progs)...)
}

// TestCgroupThroughAPI counts the packets of a process in a new cgroup.
func TestCgroupThroughAPI(t *testing.T) {
	td := newTestDaemon(t)
	cg := testutil.NewCgroup(t)
	ref := td.image(t, "cgroup", true, "cgroup_counter.bpf.o")
	progs := td.mustLoad(t, ref,
		&pb.LoadProgram{Name: "cgroup_ingress_counter", Type: pb.ProgramType_PROGRAM_TYPE_CGROUP, Attach: &pb.AttachSpec{Spec: &pb.AttachSpec_Cgroup{Cgroup: &pb.CgroupAttach{Path: cg}}}},
		&pb.LoadProgram{Name: "cgroup_egress_counter", Type: pb.ProgramType_PROGRAM_TYPE_CGROUP, Attach: &pb.AttachSpec{Spec: &pb.AttachSpec_Cgroup{Cgroup: &pb.CgroupAttach{Path: cg, AttachType: pb.CgroupAttachType_CGROUP_ATTACH_TYPE_INET_EGRESS}}}},
	)
	if got := progs[0].GetAttach().GetCgroup().GetAttachType(); got != pb.CgroupAttachType_CGROUP_ATTACH_TYPE_INET_INGRESS {
		t.Errorf("attach type from the ELF section: %v, want inet ingress", got)
	}
	const packets = 6
	testutil.SendUDPFromCgroup(t, cg, packets)
	pin := mapPin(t, progs[0], "cgroup_packets")
	if got := testutil.ReadU64(t, pin, uint32(0)); got < packets {
		t.Errorf("ingress counted %d packets, want at least %d", got, packets)
	}
	if got := testutil.ReadU64(t, pin, uint32(1)); got < packets {
		t.Errorf("egress counted %d packets, want at least %d", got, packets)
	}
	td.unload(t, ids(progs)...)
}

// TestKprobeThroughAPI counts getpid(2) at entry and return with kprobes;
// on a kernel without kprobes the load fails with FailedPrecondition and
// leaves nothing.
func TestKprobeThroughAPI(t *testing.T) {
	testutil.RequirePrivileged(t)
	td := newTestDaemon(t)
	ref := td.image(t, "kprobe", true, "kprobe_counter.bpf.o")
	attach := &pb.AttachSpec{Spec: &pb.AttachSpec_Kprobe{Kprobe: &pb.KprobeAttach{Function: "sys_getpid"}}}
	programs := []*pb.LoadProgram{
		{Name: "kprobe_counter", Type: pb.ProgramType_PROGRAM_TYPE_KPROBE, Attach: attach},
		{Name: "kretprobe_counter", Type: pb.ProgramType_PROGRAM_TYPE_KRETPROBE, Attach: attach},
	}
	if testutil.KernelHas(testutil.FeatureKprobe) != nil && os.Getenv(testutil.RequireKernelEnv) == "" {
		before := td.snapshot(t)
		_, err := td.load(t, ref, programs...)
		wantCode(t, err, codes.FailedPrecondition, "kprobe")
		td.assertUnchanged(t, before)
	}
	testutil.RequireKernelFeature(t, testutil.FeatureKprobe)
	testutil.RequireKernelFeature(t, testutil.FeatureKretprobe)
	progs := td.mustLoad(t, ref, programs...)
	pin := mapPin(t, progs[0], "kprobe_calls")
	entries, returns := testutil.ReadU64(t, pin, uint32(0)), testutil.ReadU64(t, pin, uint32(1))
	const calls = 20
	for range calls {
		syscall.Getpid()
	}
	if got := testutil.ReadU64(t, pin, uint32(0)) - entries; got < calls {
		t.Errorf("kprobe counted %d calls, want at least %d", got, calls)
	}
	if got := testutil.ReadU64(t, pin, uint32(1)) - returns; got < calls {
		t.Errorf("kretprobe counted %d returns, want at least %d", got, calls)
	}
	td.unload(t, ids(progs)...)
}

// TestFentryThroughAPI counts do_unlinkat at entry and exit through BPF
// trampolines.
func TestFentryThroughAPI(t *testing.T) {
	testutil.RequireKernelFeature(t, testutil.FeatureFentry)
	testutil.RequireKernelFeature(t, testutil.FeatureFexit)
	td := newTestDaemon(t)
	ref := td.image(t, "fentry", true, "fentry_counter.bpf.o")
	attach := &pb.AttachSpec{Spec: &pb.AttachSpec_Fentry{Fentry: &pb.FentryAttach{Function: "do_unlinkat"}}}
	progs := td.mustLoad(t, ref,
		&pb.LoadProgram{Name: "fentry_counter", Type: pb.ProgramType_PROGRAM_TYPE_FENTRY, Attach: attach},
		&pb.LoadProgram{Name: "fexit_counter", Type: pb.ProgramType_PROGRAM_TYPE_FEXIT, Attach: attach},
	)
	pin := mapPin(t, progs[0], "unlinkat_calls")
	entries, exits := testutil.ReadU64(t, pin, uint32(0)), testutil.ReadU64(t, pin, uint32(1))
	const calls = 10
	dir := t.TempDir()
	for i := range calls {
		f := filepath.Join(dir, strconv.Itoa(i))
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	if got := testutil.ReadU64(t, pin, uint32(0)) - entries; got < calls {
		t.Errorf("fentry counted %d calls, want at least %d", got, calls)
	}
	if got := testutil.ReadU64(t, pin, uint32(1)) - exits; got < calls {
		t.Errorf("fexit counted %d exits, want at least %d", got, calls)
	}
	td.unload(t, ids(progs)...)
}
