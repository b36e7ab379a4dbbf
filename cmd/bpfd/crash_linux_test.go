package main

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// crashIterationsEnv sets the number of kills of TestCrashDuringLoads (and
// of pkg/runtime's TestCrashRecovery).
const crashIterationsEnv = "BPFD_CRASH_ITERATIONS"

// TestCrashDuringLoads kills bpfd with SIGKILL while a client loads and
// unloads XDP, TC, TCX (where the kernel has it) and tracepoint programs,
// at random moments, then starts it again. Before each start the test reads
// the state store bpfd left; after it, bpfd lists exactly the programs the
// store recorded as loaded (those it was loading are rolled back, those it
// was unloading are gone), each live in the kernel with its pins; no pin
// lacks a program; the veth's XDP, TC and TCX hooks run exactly what bpfd
// lists on them, and each hook with a chain has its dispatcher pinned.
// 20 kills by default, 200 under BPFD_SOAK=1, BPFD_CRASH_ITERATIONS=N.
func TestCrashDuringLoads(t *testing.T) {
	n := newNode(t)
	v := testutil.NewVethPair(t)
	refs := map[string]string{
		"tracepoint": n.image(t, "tracepoint", "tracepoint_counter.bpf.o"),
		"xdp":        n.image(t, "xdp", "xdp_counter.bpf.o"),
		"tc":         n.image(t, "tc", "tc_counter.bpf.o"),
	}
	iterations := testutil.Iterations(t, crashIterationsEnv, 20, 200)
	kinds := []string{"tracepoint", "tc", "xdp"}
	if testutil.KernelHas(testutil.FeatureTCX) == nil {
		kinds = append(kinds, "tcx")
	}
	// Kills land within a few loads' time: time one load on this machine
	// (the VM's emulated CPU is many times slower than the host's).
	b := n.start(t)
	client, closeClient := n.client(t)
	var perLoad time.Duration
	for _, tp := range []string{"syscalls/sys_enter_getpid", "syscalls/sys_enter_getppid"} { // the first pulls
		start := time.Now()
		if _, err := client.Load(context.Background(), &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: refs["tracepoint"]}, Programs: []*pb.LoadProgram{tracepoint(tp)}}); err != nil {
			t.Fatal(err)
		}
		perLoad = time.Since(start)
	}
	// An XDP load rebuilds the interface's chain: the slowest of the mix.
	start := time.Now()
	if _, err := client.Load(context.Background(), crashRequest("xdp", v, refs)); err != nil {
		t.Fatal(err)
	}
	perLoad = max(perLoad, time.Since(start))
	closeClient()
	b.stop(t, syscall.SIGTERM)
	t.Logf("a load takes %v; %d kills", perLoad, iterations)

	loads := 0
	interrupted := map[string]int{}
	for i := range iterations {
		records, _ := storeContents(t, n.state)
		b := n.start(t)
		n.checkConsistent(t, v, b, records)
		if t.Failed() {
			t.Fatalf("inconsistent after kill %d", i)
		}
		client, closeClient := n.client(t)
		stopped := make(chan churnResult)
		go func() { stopped <- churn(client, v, refs, kinds) }()
		time.Sleep(time.Duration(rand.Int64N(int64(6 * perLoad))))
		b.stop(t, syscall.SIGKILL)
		res := <-stopped
		loads += res.loads
		interrupted[res.interrupted]++
		closeClient()
	}
	t.Logf("%d kills, %d loads completed between them; the kills interrupted: %s", iterations, loads, describeKills(interrupted))
	records, _ := storeContents(t, n.state)
	b = n.start(t)
	n.checkConsistent(t, v, b, records)
	client, closeClient = n.client(t)
	defer closeClient()
	list, err := client.List(context.Background(), &pb.ListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if ids := ids(list.GetPrograms()); len(ids) > 0 {
		if _, err := client.Unload(context.Background(), &pb.UnloadRequest{Ids: ids}); err != nil {
			t.Fatal(err)
		}
	}
	n.checkConsistent(t, v, b, nil)
	if loads == 0 {
		t.Error("no load completed between the kills: the test did not exercise loads")
	}
	b.stop(t, syscall.SIGTERM)
	if records, objects := storeContents(t, n.state); len(records) != 0 || objects != 0 {
		t.Errorf("store holds %d records %v and %d objects after everything was unloaded", len(records), records, objects)
	}
}

// crashRequest is a load of one program of kind: XDP and TC programs on
// the veth's peer (with random priorities), TCX on the host end's egress,
// tracepoints on one of three syscalls.
func crashRequest(kind string, v *testutil.VethPair, refs map[string]string) *pb.LoadRequest {
	var p *pb.LoadProgram
	ref := refs[kind]
	switch kind {
	case "xdp":
		p = &pb.LoadProgram{Name: "xdp_counter", Type: pb.ProgramType_PROGRAM_TYPE_XDP,
			Attach: &pb.AttachSpec{Spec: &pb.AttachSpec_Xdp{Xdp: &pb.XdpAttach{Interface: v.Peer, Netns: v.Netns, Priority: int32(1 + rand.IntN(100))}}}}
	case "tc":
		p = &pb.LoadProgram{Name: "tc_counter", Type: pb.ProgramType_PROGRAM_TYPE_TC,
			Attach: &pb.AttachSpec{Spec: &pb.AttachSpec_Tc{Tc: &pb.TcAttach{Interface: v.Peer, Netns: v.Netns, Direction: pb.Direction_DIRECTION_INGRESS, Priority: int32(1 + rand.IntN(100))}}}}
	case "tcx":
		ref = refs["tc"]
		p = &pb.LoadProgram{Name: "tcx_counter", Type: pb.ProgramType_PROGRAM_TYPE_TCX,
			Attach: &pb.AttachSpec{Spec: &pb.AttachSpec_Tcx{Tcx: &pb.TcxAttach{Interface: v.Host, Direction: pb.Direction_DIRECTION_EGRESS, Priority: int32(1 + rand.IntN(100))}}}}
	default:
		tps := []string{"syscalls/sys_enter_getpid", "syscalls/sys_enter_getppid", "syscalls/sys_enter_close"}
		p = tracepoint(tps[rand.IntN(len(tps))])
	}
	return &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: ref}, Programs: []*pb.LoadProgram{p}}
}

// churnResult is what a churn did before bpfd stopped answering.
type churnResult struct {
	loads       int    // loads that succeeded
	interrupted string // the call under way when bpfd died: "load xdp", "unload", ...
}

// churn loads and unloads until bpfd stops answering. It takes over the
// programs earlier churns left, holds up to eight and unloads one at random
// half of the time, so that hooks never fill up over many kills.
func churn(client pb.BpfdClient, v *testutil.VethPair, refs map[string]string, kinds []string) churnResult {
	ctx := context.Background()
	var res churnResult
	list, err := client.List(ctx, &pb.ListRequest{})
	if status.Code(err) == codes.Unavailable {
		res.interrupted = "list"
		return res
	}
	loaded := ids(list.GetPrograms())
	for {
		if len(loaded) > 0 && (len(loaded) >= 8 || rand.IntN(2) == 0) {
			i := rand.IntN(len(loaded))
			if _, err := client.Unload(ctx, &pb.UnloadRequest{Ids: []uint64{loaded[i]}}); status.Code(err) == codes.Unavailable {
				res.interrupted = "unload"
				return res
			}
			loaded = slices.Delete(loaded, i, i+1)
			continue
		}
		kind := kinds[rand.IntN(len(kinds))]
		resp, err := client.Load(ctx, crashRequest(kind, v, refs))
		if status.Code(err) == codes.Unavailable {
			res.interrupted = "load " + kind
			return res
		}
		if err != nil {
			continue
		}
		res.loads++
		loaded = append(loaded, resp.GetPrograms()[0].GetId())
	}
}

// checkConsistent checks what bpfd lists against the store it started
// from (records, by id; nil: do not check), its bpffs and the kernel.
func (n *node) checkConsistent(t *testing.T, v *testutil.VethPair, b *bpfd, records map[uint64]string) {
	t.Helper()
	client, closeClient := n.client(t)
	defer closeClient()
	list, err := client.List(context.Background(), &pb.ListRequest{})
	if err != nil {
		t.Fatalf("List: %v\n%s", err, b.log())
	}
	var listed []string
	chains := map[pb.ProgramType]map[uint32]bool{pb.ProgramType_PROGRAM_TYPE_XDP: {}, pb.ProgramType_PROGRAM_TYPE_TC: {}}
	var tcx []uint32
	for _, p := range list.GetPrograms() {
		listed = append(listed, strconv.FormatUint(p.GetId(), 10))
		k := p.GetKernel()
		if k == nil || !kernelHas(k.GetProgramId()) {
			t.Errorf("program %d (%s) listed but not in the kernel", p.GetId(), p.GetName())
			continue
		}
		for _, m := range p.GetMaps() {
			if id := pinnedMapID(m.GetPinPath()); id != m.GetId() {
				t.Errorf("program %d: map %s pinned at %s is map %d, bpfd reports %d", p.GetId(), m.GetName(), m.GetPinPath(), id, m.GetId())
			}
		}
		switch p.GetType() {
		case pb.ProgramType_PROGRAM_TYPE_XDP, pb.ProgramType_PROGRAM_TYPE_TC:
			// The hook's chain runs it. In linked mode its kernel program
			// is the chain's dispatcher; in freplace mode it is its
			// extension program, pinned in its directory; alone on its
			// hook (no dispatcher mode) it is the program the hook runs,
			// pinned in its directory.
			hook := p.GetHook()
			disp := pinnedDispatchers(t, n.bpffs, hook.GetHook())
			if len(disp) != 1 {
				t.Errorf("program %d (%s): hook %s has dispatchers %v pinned, want one", p.GetId(), p.GetName(), hook.GetHook(), disp)
				continue
			}
			chains[p.GetType()][disp[0]] = true
			switch hook.GetDispatcherMode() {
			case pb.DispatcherMode_DISPATCHER_MODE_LINKED:
				if k.GetProgramId() != disp[0] {
					t.Errorf("program %d (%s): reports kernel program %d, its hook's linked dispatcher is %d", p.GetId(), p.GetName(), k.GetProgramId(), disp[0])
				}
			case pb.DispatcherMode_DISPATCHER_MODE_FREPLACE:
				if got := pinnedProgramID(filepath.Join(p.GetPinPath(), "program")); got != k.GetProgramId() {
					t.Errorf("program %d (%s): its pinned extension program is %d, bpfd reports %d", p.GetId(), p.GetName(), got, k.GetProgramId())
				}
			case pb.DispatcherMode_DISPATCHER_MODE_UNSPECIFIED:
				if got := pinnedProgramID(filepath.Join(p.GetPinPath(), "program")); got != k.GetProgramId() || got != disp[0] {
					t.Errorf("program %d (%s): alone on its hook, its pinned program is %d, bpfd reports %d, the hook runs %d", p.GetId(), p.GetName(), got, k.GetProgramId(), disp[0])
				}
			default:
				t.Errorf("program %d (%s): dispatcher mode %v", p.GetId(), p.GetName(), hook.GetDispatcherMode())
			}
			continue
		case pb.ProgramType_PROGRAM_TYPE_TCX:
			tcx = append(tcx, k.GetProgramId())
		}
		if got := pinnedLinkProgram(filepath.Join(p.GetPinPath(), "link")); got != k.GetProgramId() {
			t.Errorf("program %d (%s): its pinned link runs program %d, bpfd reports %d", p.GetId(), p.GetName(), got, k.GetProgramId())
		}
	}
	slices.Sort(listed)
	if records != nil {
		var want []string
		for id, state := range records {
			if state == "loaded" {
				want = append(want, strconv.FormatUint(id, 10))
			}
		}
		slices.Sort(want)
		if !slices.Equal(listed, want) {
			t.Errorf("bpfd lists %v; the store it started from recorded %v as loaded (all records: %v)", listed, want, records)
		}
	}
	if pins := pinnedPrograms(t, n.bpffs); !slices.Equal(listed, pins) {
		t.Errorf("pin dirs %v, listed programs %v", pins, listed)
	}
	// Each XDP and TC hook runs one chain, which every program on it
	// reports as its kernel program; the TCX hook runs exactly the listed
	// TCX programs.
	hooks := map[pb.ProgramType][]uint32{
		pb.ProgramType_PROGRAM_TYPE_XDP: xdpPrograms(t, v),
		pb.ProgramType_PROGRAM_TYPE_TC:  tcIngressPrograms(t, v),
	}
	withChain := 0
	for typ, chain := range chains {
		if len(chain) > 0 {
			withChain++
		}
		if want := slices.Sorted(maps.Keys(chain)); !slices.Equal(hooks[typ], want) || len(want) > 1 {
			t.Errorf("%s: the peer's hook runs %v, bpfd's programs report chain %v", typ, hooks[typ], want)
		}
	}
	slices.Sort(tcx)
	if got := tcxPrograms(t, v.Host, ebpf.AttachTCXEgress, ""); !slices.Equal(got, tcx) {
		t.Errorf("TCX egress of %s runs %v, bpfd lists %v", v.Host, got, tcx)
	}
	if d := dispatchers(t, n.bpffs); len(d) != withChain {
		t.Errorf("dispatchers pinned for %v, %d hooks have programs", d, withChain)
	}
	if t.Failed() {
		t.Logf("bpfd log:\n%s", tail(b.log(), 60))
	}
}

// pinnedMapID returns the kernel id of the map pinned at path, 0 if none.
func pinnedMapID(path string) uint32 {
	m, err := ebpf.LoadPinnedMap(path, &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		return 0
	}
	defer m.Close()
	info, err := m.Info()
	if err != nil {
		return 0
	}
	id, _ := info.ID()
	return uint32(id)
}

// pinnedProgramID returns the kernel id of the program pinned at path, 0
// if none.
func pinnedProgramID(path string) uint32 {
	p, err := ebpf.LoadPinnedProgram(path, &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		return 0
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return 0
	}
	id, _ := info.ID()
	return uint32(id)
}

// pinnedLinkProgram returns the kernel id of the program the link pinned
// at path runs, 0 if none.
func pinnedLinkProgram(path string) uint32 {
	l, err := link.LoadPinnedLink(path, nil)
	if err != nil {
		return 0
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		return 0
	}
	return uint32(info.Program)
}

func kernelHas(id uint32) bool {
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return false
	}
	p.Close()
	return true
}

// describeKills formats a tally of kill points.
func describeKills(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
