package main

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// soakCallsEnv sets how many calls each client of TestConcurrentClients
// makes; BPFD_SOAK=1 (make soak) makes it 500.
const soakCallsEnv = "BPFD_SOAK_CALLS"

// soakClients is how many clients TestConcurrentClients runs at once.
const soakClients = 8

// TestConcurrentClients runs soakClients clients against one bpfd process,
// each on its own connection making a random mix of loads (XDP and TC
// chains on one shared veth, TCX, tracepoints), unloads, lists, gets and
// calls that must fail. Every call must succeed, or fail with the code and
// message its fault calls for; what a client loaded it sees in List and
// Get until it unloads it, and never after. Once all is unloaded nothing
// may be left: no pin, no program on the veth's hooks, no kernel program,
// link or map the daemon reported, no more open descriptors or goroutines
// in the daemon than before the clients came, and no record in its store.
// 50 calls a client by default; 500 under BPFD_SOAK=1; BPFD_SOAK_CALLS=N.
func TestConcurrentClients(t *testing.T) {
	n := newNode(t)
	v := testutil.NewVethPair(t)
	calls := testutil.Iterations(t, soakCallsEnv, 50, 500)
	w := &workload{
		v:   v,
		tcx: testutil.KernelHas(testutil.FeatureTCX) == nil,
		refs: map[string]string{
			"tracepoint": n.image(t, "tracepoint", "tracepoint_counter.bpf.o"),
			"xdp":        n.image(t, "xdp", "xdp_counter.bpf.o"),
			"tc":         n.image(t, "tc", "tc_counter.bpf.o"),
		},
	}
	metrics := testutil.FreeLoopbackAddr(t)
	b := n.start(t, "--metrics-address", metrics, "--log-level", "info")
	admin, closeAdmin := n.client(t)
	defer closeAdmin()
	ctx := context.Background()

	// Warm up: the first load of each kind pulls its artifact and opens
	// what the daemon keeps for good (the cache, tracefs); the baseline
	// comes after.
	for _, kind := range w.kinds() {
		resp, err := admin.Load(ctx, w.request(kind, rand.New(rand.NewPCG(1, 2))))
		if err != nil {
			t.Fatalf("warm-up load of %s: %v\n%s", kind, err, b.log())
		}
		if kind == "xdp" {
			// A lone program runs without a dispatcher: a second one on
			// the hook shows the mode of its chains.
			second, err := admin.Load(ctx, w.request(kind, rand.New(rand.NewPCG(1, 2))))
			if err != nil {
				t.Fatalf("warm-up load of a second %s: %v\n%s", kind, err, b.log())
			}
			w.setChainRoom(second.GetPrograms()[0].GetHook().GetDispatcherMode())
			if _, err := admin.Unload(ctx, &pb.UnloadRequest{Ids: ids(second.GetPrograms())}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := admin.Unload(ctx, &pb.UnloadRequest{Ids: ids(resp.GetPrograms())}); err != nil {
			t.Fatal(err)
		}
	}
	beforeFDs := daemonFDs(t, b)
	// The daemon's goroutines settle a moment after a call (a stream's
	// goroutine ends after its reply, a connection's start lazily): the
	// baseline is the most seen over half a second.
	beforeGoroutines := 0
	for range 10 {
		beforeGoroutines = max(beforeGoroutines, goroutines(t, metrics))
		time.Sleep(50 * time.Millisecond)
	}

	seed := uint64(time.Now().UnixNano())
	t.Logf("%d clients x %d calls, seed %d, chains of up to %d programs", soakClients, calls, seed, w.chainRoom["xdp"])
	clients := make([]*soakClient, soakClients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		c := &soakClient{w: w, rng: rand.New(rand.NewPCG(seed, uint64(i))), loaded: map[uint64]string{}, gone: map[uint64]bool{},
			kernel: map[string]map[uint32]bool{"program": {}, "link": {}, "map": {}}, tally: map[string]int{}}
		client, closeClient := n.client(t)
		c.client = client
		clients[i] = c
		wg.Go(func() {
			defer closeClient()
			c.run(calls)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	tally := map[string]int{}
	kernel := map[string]map[uint32]bool{"program": {}, "link": {}, "map": {}}
	for i, c := range clients {
		for _, p := range c.problems {
			t.Errorf("client %d: %s", i, p)
		}
		for k, n := range c.tally {
			tally[k] += n
		}
		for kind, set := range c.kernel {
			maps.Copy(kernel[kind], set)
		}
	}
	total := 0
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(tally)) {
		lines = append(lines, fmt.Sprintf("%6d  %s", tally[k], k))
		total += tally[k]
	}
	t.Logf("%d calls in %v:\n%s", total, elapsed.Round(time.Millisecond), strings.Join(lines, "\n"))
	if t.Failed() {
		t.Fatalf("bpfd log:\n%s", tail(b.log(), 40))
	}

	// Nothing left: the API, the bpffs, the veth's hooks, the kernel.
	list, err := admin.List(ctx, &pb.ListRequest{})
	if err != nil || len(list.GetPrograms()) != 0 {
		t.Errorf("after the clients unloaded everything: List %v, %v; want none", ids(list.GetPrograms()), err)
	}
	if pins := pinnedPrograms(t, n.bpffs); len(pins) != 0 {
		t.Errorf("pins left: %v", pins)
	}
	if d := dispatchers(t, n.bpffs); len(d) != 0 {
		t.Errorf("dispatchers left pinned: %v", d)
	}
	if xdp, tc, tcx := xdpPrograms(t, v), tcIngressPrograms(t, v), tcxPrograms(t, v.Peer, ebpf.AttachTCXEgress, v.Netns); len(xdp)+len(tc)+len(tcx) > 0 {
		t.Errorf("the veth's peer still runs XDP %v, TC ingress %v, TCX egress %v", xdp, tc, tcx)
	}
	eventually(t, "the kernel to free what the daemon loaded", func() string {
		return kernelLeft(kernel)
	})
	t.Logf("kernel objects reported and freed: %d programs, %d links, %d maps", len(kernel["program"]), len(kernel["link"]), len(kernel["map"]))
	// The daemon closes a connection's descriptors and goroutines a moment
	// after the client goes.
	var afterFDs, afterGoroutines int
	eventually(t, "the daemon's descriptors to return to their number before", func() string {
		if afterFDs = daemonFDs(t, b); afterFDs > beforeFDs {
			return fmt.Sprintf("%d open descriptors, %d before the clients:\n%s", afterFDs, beforeFDs, strings.Join(fdTargets(b), "\n"))
		}
		return ""
	})
	eventually(t, "the daemon's goroutines to return to their number before", func() string {
		if afterGoroutines = goroutines(t, metrics); afterGoroutines > beforeGoroutines {
			return fmt.Sprintf("%d goroutines, %d before the clients", afterGoroutines, beforeGoroutines)
		}
		return ""
	})

	closeAdmin()
	if st := b.stop(t, syscall.SIGTERM); st.ExitCode() != 0 {
		t.Errorf("exit after SIGTERM: %v", st)
	}
	records, objects := storeContents(t, n.state)
	if len(records) != 0 || objects != 0 {
		t.Errorf("store holds %d records %v and %d objects, want none", len(records), records, objects)
	}
	t.Logf("left after the clients: %d pins, %d dispatchers, %d kernel objects, %d daemon descriptors more than the %d before (%d goroutines, %d before), %d store records, %d stored objects",
		len(pinnedPrograms(t, n.bpffs)), len(dispatchers(t, n.bpffs)), leftCount(kernel), max(0, afterFDs-beforeFDs), beforeFDs, afterGoroutines, beforeGoroutines, len(records), objects)
}

// leftCount is how many of the kernel objects (by kind) still exist.
func leftCount(objects map[string]map[uint32]bool) int {
	n := 0
	for kind, ids := range objects {
		for id := range ids {
			if kernelHasObject(kind, id) {
				n++
			}
		}
	}
	return n
}

// workload is what the soak clients load: signed artifacts of the example
// programs and the hooks they attach to.
type workload struct {
	v    *testutil.VethPair
	tcx  bool // the kernel attaches TCX links
	refs map[string]string

	// chainRoom is how many more programs the XDP and TC chains take, by
	// kind: a client takes room before it loads and gives it back when it
	// unloads, so that no load finds its chain full (in freplace mode a
	// chain takes fewer programs than the clients may hold).
	mu        sync.Mutex
	chainRoom map[string]int
}

// setChainRoom sizes the chains for the daemon's dispatcher mode.
func (w *workload) setChainRoom(mode pb.DispatcherMode) {
	room := dispatcher.MaxLinkedPrograms
	if mode == pb.DispatcherMode_DISPATCHER_MODE_FREPLACE {
		room = dispatcher.MaxFreplacePrograms
	}
	w.chainRoom = map[string]int{"xdp": room, "tc": room}
}

// takeRoom takes room for one program of kind in its chain; it reports
// false when the chain is full. Kinds without a chain always have room.
func (w *workload) takeRoom(kind string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	room, ok := w.chainRoom[kind]
	if !ok {
		return true
	}
	if room == 0 {
		return false
	}
	w.chainRoom[kind] = room - 1
	return true
}

// giveRoom gives back the room of one program of kind.
func (w *workload) giveRoom(kind string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.chainRoom[kind]; ok {
		w.chainRoom[kind]++
	}
}

// tracepoints spread the tracepoint programs (the kernel takes 64 per
// tracepoint; the clients hold at most soakClients*maxHeld).
var tracepoints = []string{"syscalls/sys_enter_getpid", "syscalls/sys_enter_getppid", "syscalls/sys_enter_getuid"}

func (w *workload) kinds() []string {
	kinds := []string{"tracepoint", "xdp", "tc"}
	if w.tcx {
		kinds = append(kinds, "tcx")
	}
	return kinds
}

// request is a valid load of one program of kind, on the veth's peer for
// the network kinds, with a random priority where the hook ranks by one.
func (w *workload) request(kind string, rng *rand.Rand) *pb.LoadRequest {
	prio := int32(1 + rng.IntN(1000))
	var p *pb.LoadProgram
	ref := w.refs[kind]
	switch kind {
	case "xdp":
		p = &pb.LoadProgram{Name: "xdp_counter", Type: pb.ProgramType_PROGRAM_TYPE_XDP, Attach: &pb.AttachSpec{Spec: &pb.AttachSpec_Xdp{Xdp: &pb.XdpAttach{
			Interface: w.v.Peer, Netns: w.v.Netns, Priority: prio, ProceedOn: []pb.XdpAction{pb.XdpAction_XDP_ACTION_PASS}}}}}
	case "tc":
		p = &pb.LoadProgram{Name: "tc_counter", Type: pb.ProgramType_PROGRAM_TYPE_TC, Attach: &pb.AttachSpec{Spec: &pb.AttachSpec_Tc{Tc: &pb.TcAttach{
			Interface: w.v.Peer, Netns: w.v.Netns, Direction: pb.Direction_DIRECTION_INGRESS, Priority: prio}}}}
	case "tcx":
		ref = w.refs["tc"]
		p = &pb.LoadProgram{Name: "tcx_counter", Type: pb.ProgramType_PROGRAM_TYPE_TCX, Attach: &pb.AttachSpec{Spec: &pb.AttachSpec_Tcx{Tcx: &pb.TcxAttach{
			Interface: w.v.Peer, Netns: w.v.Netns, Direction: pb.Direction_DIRECTION_EGRESS, Priority: prio}}}}
	default:
		p = tracepoint(tracepoints[rng.IntN(len(tracepoints))])
	}
	return &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: ref}, Programs: []*pb.LoadProgram{p}, Metadata: map[string]string{"soak": "true"}}
}

// maxHeld is how many programs a soak client holds at most: eight clients
// fill an XDP or TC chain to at most 48 of the linked mode's 64; the
// freplace mode's 10 fill up, and chainRoom turns loads past them into
// tracepoint loads.
const maxHeld = 6

// soakClient is one client of TestConcurrentClients. Its calls are
// sequential, so what it loaded must be visible to its next List.
type soakClient struct {
	w      *workload
	client pb.BpfdClient
	rng    *rand.Rand

	loaded map[uint64]string // kind by id: loaded by this client, not yet unloaded
	gone   map[uint64]bool   // unloaded by this client
	// kernel holds the ids of the kernel programs, links and maps the
	// daemon reported for this client's programs.
	kernel map[string]map[uint32]bool
	// tally counts the calls by kind and outcome, e.g. "Load ok".
	tally    map[string]int
	problems []string
}

// faults are calls that must fail: the code and a part of the message.
var faults = []struct {
	name string
	code codes.Code
	want string
	call func(c *soakClient, ctx context.Context) error
}{
	{"Unload of an unknown id", codes.NotFound, "program 987654321", func(c *soakClient, ctx context.Context) error {
		_, err := c.client.Unload(ctx, &pb.UnloadRequest{Ids: []uint64{987654321}})
		return err
	}},
	{"Get of an unknown id", codes.NotFound, "program 987654321", func(c *soakClient, ctx context.Context) error {
		_, err := c.client.Get(ctx, &pb.GetRequest{Id: 987654321})
		return err
	}},
	{"Load of a program the artifact lacks", codes.NotFound, "program nope", func(c *soakClient, ctx context.Context) error {
		req := c.w.request("tracepoint", c.rng)
		req.Programs[0].Name = "nope"
		_, err := c.client.Load(ctx, req)
		return err
	}},
	{"Load on a missing interface", codes.NotFound, "interface bpfdnope0", func(c *soakClient, ctx context.Context) error {
		req := c.w.request("xdp", c.rng)
		req.Programs[0].GetAttach().GetXdp().Interface = "bpfdnope0"
		_, err := c.client.Load(ctx, req)
		return err
	}},
	{"Load with a priority out of range", codes.InvalidArgument, "priority 5000: out of range", func(c *soakClient, ctx context.Context) error {
		req := c.w.request("tc", c.rng)
		req.Programs[0].GetAttach().GetTc().Priority = 5000
		_, err := c.client.Load(ctx, req)
		return err
	}},
}

// run makes calls calls, then unloads what the client still holds.
func (c *soakClient) run(calls int) {
	for range calls {
		switch r := c.rng.IntN(100); {
		case r < 40 && len(c.loaded) < maxHeld:
			kinds := c.w.kinds()
			c.load(kinds[c.rng.IntN(len(kinds))])
		case r < 65:
			c.unload(c.pick())
		case r < 80:
			c.list()
		case r < 87:
			c.get()
		default:
			f := faults[c.rng.IntN(len(faults))]
			err := c.call(func(ctx context.Context) error { return f.call(c, ctx) })
			c.expectFault(f.name, err, f.code, f.want)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.loaded)) {
		c.unload(id)
	}
}

// callTimeout bounds each call: a call that takes longer counts as a
// problem (a hung daemon), not as slowness.
const callTimeout = 2 * time.Minute

func (c *soakClient) call(fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return fn(ctx)
}

func (c *soakClient) problem(format string, args ...any) {
	if len(c.problems) < 20 {
		c.problems = append(c.problems, fmt.Sprintf(format, args...))
	}
}

// pick returns one of the client's programs, 0 when it holds none.
func (c *soakClient) pick() uint64 {
	if len(c.loaded) == 0 {
		return 0
	}
	held := slices.Sorted(maps.Keys(c.loaded))
	return held[c.rng.IntN(len(held))]
}

func (c *soakClient) load(kind string) {
	if !c.w.takeRoom(kind) {
		kind = "tracepoint"
	}
	req := c.w.request(kind, c.rng)
	var resp *pb.LoadResponse
	err := c.call(func(ctx context.Context) (err error) {
		resp, err = c.client.Load(ctx, req)
		return err
	})
	c.tally["Load "+kind+" "+outcome(err)]++
	if err != nil {
		c.w.giveRoom(kind)
		c.problem("Load %s: %v", kind, err)
		return
	}
	for _, p := range resp.GetPrograms() {
		c.loaded[p.GetId()] = kind
		c.note(p)
	}
}

// note records the kernel objects the daemon reported for p.
func (c *soakClient) note(p *pb.Program) {
	k := p.GetKernel()
	if k == nil || k.GetProgramId() == 0 {
		c.problem("program %d (%s): no kernel program reported", p.GetId(), p.GetName())
		return
	}
	c.kernel["program"][k.GetProgramId()] = true
	for _, id := range k.GetLinkIds() {
		c.kernel["link"][id] = true
	}
	for _, id := range k.GetMapIds() {
		c.kernel["map"][id] = true
	}
}

func (c *soakClient) unload(id uint64) {
	if id == 0 {
		c.list()
		return
	}
	err := c.call(func(ctx context.Context) error {
		_, err := c.client.Unload(ctx, &pb.UnloadRequest{Ids: []uint64{id}})
		return err
	})
	c.tally["Unload "+outcome(err)]++
	if err != nil {
		c.problem("Unload %d: %v", id, err)
		return
	}
	c.w.giveRoom(c.loaded[id])
	delete(c.loaded, id)
	c.gone[id] = true
}

func (c *soakClient) list() {
	var resp *pb.ListResponse
	err := c.call(func(ctx context.Context) (err error) {
		resp, err = c.client.List(ctx, &pb.ListRequest{Selector: map[string]string{"soak": "true"}})
		return err
	})
	c.tally["List "+outcome(err)]++
	if err != nil {
		c.problem("List: %v", err)
		return
	}
	listed := map[uint64]bool{}
	for _, p := range resp.GetPrograms() {
		listed[p.GetId()] = true
		if c.gone[p.GetId()] {
			c.problem("List shows program %d, which this client unloaded", p.GetId())
		}
		if p.GetKernel() == nil {
			c.problem("List shows program %d (%s) without its kernel program", p.GetId(), p.GetType())
		}
	}
	for id := range c.loaded {
		if !listed[id] {
			c.problem("List lacks program %d, which this client loaded", id)
		}
	}
}

func (c *soakClient) get() {
	id := c.pick()
	if id == 0 {
		c.list()
		return
	}
	var resp *pb.GetResponse
	err := c.call(func(ctx context.Context) (err error) {
		resp, err = c.client.Get(ctx, &pb.GetRequest{Id: id})
		return err
	})
	c.tally["Get "+outcome(err)]++
	switch {
	case err != nil:
		c.problem("Get %d: %v", id, err)
	case resp.GetProgram().GetId() != id || resp.GetProgram().GetKernel() == nil:
		c.problem("Get %d: %v", id, resp.GetProgram())
	}
}

// expectFault checks a call that must fail: its code, and a message on one
// line that names the thing at fault.
func (c *soakClient) expectFault(name string, err error, code codes.Code, want string) {
	st := status.Convert(err)
	c.tally[name+" "+outcome(err)]++
	switch {
	case err == nil:
		c.problem("%s: succeeded", name)
	case st.Code() != code:
		c.problem("%s: %v, want code %v", name, err, code)
	case !strings.Contains(st.Message(), want) || strings.Contains(st.Message(), "\n"):
		c.problem("%s: message %q, want one line containing %q", name, st.Message(), want)
	}
}

// outcome names a call's result in the tally: "ok" or the status code.
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	return status.Code(err).String()
}

func ids(progs []*pb.Program) []uint64 {
	var out []uint64
	for _, p := range progs {
		out = append(out, p.GetId())
	}
	return out
}

// eventually retries check, which returns what is still wrong or "", for
// up to ten seconds, and fails t with the last complaint.
func eventually(t *testing.T, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("waiting for %s: %s", what, msg)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
