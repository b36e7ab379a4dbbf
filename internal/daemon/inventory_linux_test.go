package daemon

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// TestInventoryThroughAPI: a process in a pod's container cgroup holds a
// program it loaded itself, and bpfd runs two counters in a chain on a
// veth's XDP hook. The inventory attributes the process's program to it,
// its container and its pod, names bpfd's two programs as those the
// chain's kernel program runs, and lists neither bpfd's own iterator nor,
// through List, the chain's program as unmanaged.
func TestInventoryThroughAPI(t *testing.T) {
	td := newTestDaemon(t)
	ctx := context.Background()
	v := testutil.NewVethPair(t)
	ref := td.image(t, "xdp-verdict", true, "xdp_verdict.bpf.o")
	a := td.mustLoad(t, ref, xdpProg("xdp_verdict", v.Peer, v.Netns))[0]
	b := td.mustLoad(t, ref, xdpProg("xdp_verdict", v.Peer, v.Netns))[0]
	pp := testutil.StartPodProcess(t, testutil.CgroupDriverSystemd, "")
	// Loading b rebuilt the chain: a's kernel program is the new one.
	got, err := td.client.Get(ctx, &pb.GetRequest{Id: a.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	a = got.GetProgram()

	for _, source := range []pb.HolderSource{pb.HolderSource_HOLDER_SOURCE_UNSPECIFIED, pb.HolderSource_HOLDER_SOURCE_PROCFS} {
		inv, err := td.client.Inventory(ctx, &pb.InventoryRequest{HolderSource: source})
		if err != nil {
			t.Fatal(err)
		}
		programs := map[uint32]*pb.InventoryProgram{}
		for _, p := range inv.GetPrograms() {
			programs[p.GetId()] = p
		}
		theirs := programs[pp.ProgramID]
		if theirs == nil || len(theirs.GetManagedIds()) != 0 || theirs.GetChainHook() != "" {
			t.Fatalf("%s: the pod process's program: %v, want it, nobody's", source, theirs)
		}
		if h := theirs.GetHolders(); len(h) != 1 || h[0].GetPid() != int32(pp.PID) {
			t.Errorf("%s: holders %v, want process %d", source, h, pp.PID)
		}
		var proc *pb.HolderProcess
		for _, p := range inv.GetProcesses() {
			if p.GetPid() == int32(pp.PID) {
				proc = p
			}
		}
		if proc.GetPod().GetUid() != pp.PodUID || proc.GetPod().GetContainerId() != pp.ContainerID || proc.GetCgroup() != pp.Cgroup {
			t.Errorf("%s: process %v, want pod %s container %s", source, proc, pp.PodUID, pp.ContainerID)
		}
		chain := programs[a.GetKernel().GetProgramId()]
		if chain.GetChainHook() != a.GetHook().GetHook() {
			t.Errorf("%s: kernel program %d runs the chain of %q, want %q", source, a.GetKernel().GetProgramId(), chain.GetChainHook(), a.GetHook().GetHook())
		}
		if a.GetHook().GetDispatcherMode() == pb.DispatcherMode_DISPATCHER_MODE_LINKED {
			if got := chain.GetManagedIds(); !slices.Equal(got, []uint64{a.GetId(), b.GetId()}) {
				t.Errorf("%s: the linked chain runs bpfd's programs %v, want %d and %d", source, got, a.GetId(), b.GetId())
			}
		}
		for _, p := range inv.GetPrograms() {
			if p.GetName() == "task_files" && len(p.GetManagedIds()) == 0 {
				for _, h := range p.GetHolders() {
					if proc := processOf(inv, h.GetPid()); proc.GetComm() == "daemon.test" {
						t.Errorf("%s: bpfd's own iterator is listed: %v", source, p)
					}
				}
			}
		}
	}

	list, err := td.client.List(ctx, &pb.ListRequest{All: true})
	if err != nil {
		t.Fatal(err)
	}
	own, _ := td.d.server.scanner.Own()
	for _, p := range list.GetPrograms() {
		if !p.GetManaged() && (p.GetKernel().GetProgramId() == own || p.GetKernel().GetProgramId() == a.GetKernel().GetProgramId()) {
			t.Errorf("List with all shows bpfd's own program %v as unmanaged", p.GetKernel())
		}
	}
	if !slices.ContainsFunc(list.GetPrograms(), func(p *pb.Program) bool { return p.GetKernel().GetProgramId() == pp.ProgramID }) {
		t.Errorf("List with all lacks the pod process's program %d", pp.ProgramID)
	}
}

func processOf(inv *pb.InventoryResponse, pid int32) *pb.HolderProcess {
	for _, p := range inv.GetProcesses() {
		if p.GetPid() == pid {
			return p
		}
	}
	return nil
}

// TestTopThroughAPI: while a Top call is open bpfd holds BPF statistics
// on, and each sample has the runs of each program of a chain on a veth's
// XDP hook in its interval, accounted by the chain, as many as the packets
// each counted itself; the metrics carry them. When the client goes away
// statistics go off.
func TestTopThroughAPI(t *testing.T) {
	addr := testutil.FreeLoopbackAddr(t)
	td := newTestDaemon(t, func(c *Config) { c.Metrics.Address = addr })
	ctx := context.Background()
	v := testutil.NewVethPair(t)
	ref := td.image(t, "xdp-verdict", true, "xdp_verdict.bpf.o")
	a := td.mustLoad(t, ref, xdpProg("xdp_verdict", v.Peer, v.Netns))[0]
	b := td.mustLoad(t, ref, xdpProg("xdp_verdict", v.Peer, v.Netns))[0]

	topCtx, cancel := context.WithCancel(ctx)
	stream, err := td.client.Top(topCtx, &pb.TopRequest{Interval: durationpb.New(200 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv() // statistics are on by now
	if err != nil {
		t.Fatal(err)
	}
	if !td.d.manager.StatsHeld() {
		t.Fatal("statistics are off while a Top call is open")
	}
	if got := first.GetInterval().AsDuration(); got < 150*time.Millisecond || got > 5*time.Second {
		t.Errorf("first sample's interval %v, want about 200ms", got)
	}
	packets := func(p *pb.Program) uint64 { return testutil.ReadU64(t, mapPin(t, p, ".bss"), 0) }
	// quiet returns each program's accounted runs and its own count of
	// packets at a moment the hook saw none: counts read before and after
	// a sample bpfd made between the two reads agree (the veth may carry
	// packets the test did not send).
	quiet := func() (accounted, counted map[uint64]uint64) {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			before := map[uint64]uint64{a.GetId(): packets(a), b.GetId(): packets(b)}
			s, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if packets(a) != before[a.GetId()] || packets(b) != before[b.GetId()] {
				continue
			}
			accounted = map[uint64]uint64{}
			for _, r := range s.GetPrograms() {
				accounted[r.GetId()] = r.GetRunCount()
				if (r.GetId() == a.GetId() || r.GetId() == b.GetId()) &&
					(!r.GetAccounted() || r.GetKind() != "xdp" || r.GetHook() != a.GetHook().GetHook()) {
					t.Fatalf("sample: program %d: %v, want its chain's accounting", r.GetId(), r)
				}
			}
			return accounted, before
		}
		t.Fatal("the hook never went quiet for a sample's time")
		return nil, nil
	}
	acc0, cnt0 := quiet()
	v.SendUDP(t, 20)
	deadline := time.Now().Add(10 * time.Second)
	for {
		acc1, cnt1 := quiet()
		done := true
		for _, p := range []*pb.Program{a, b} {
			// What the chain accounted since is what the program counted.
			accounted, counted := acc1[p.GetId()]-acc0[p.GetId()], cnt1[p.GetId()]-cnt0[p.GetId()]
			if accounted != counted || accounted < 20 {
				done = false
				t.Logf("program %d: accounted %d runs, counted %d packets", p.GetId(), accounted, counted)
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s the programs' accounted runs are not the packets they counted")
		}
	}

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := strconv.FormatUint(a.GetId(), 10)
	if !regexp.MustCompile(`bpfd_program_run_count_total\{id="` + id + `",name="xdp_verdict",type="xdp"\} [1-9]`).Match(body) {
		t.Errorf("/metrics lacks program %s's accounted runs", id)
	}
	if !regexp.MustCompile(`(?m)^bpfd_unmanaged_programs \d+$`).Match(body) {
		t.Error("/metrics lacks bpfd_unmanaged_programs")
	}

	cancel()
	eventually(t, "statistics to go off once the Top call ended", func() bool { return !td.d.manager.StatsHeld() })
	eventually(t, "the Top call's audit line", func() bool { return len(td.auditLines(t, "top")) == 1 })
}

// TestStatsEnabled: with stats.enabled bpfd holds statistics from start
// to stop.
func TestStatsEnabled(t *testing.T) {
	td := newTestDaemon(t, func(c *Config) { c.Stats.Enabled = true })
	if !td.d.manager.StatsHeld() {
		t.Error("statistics are off with stats.enabled")
	}
}
