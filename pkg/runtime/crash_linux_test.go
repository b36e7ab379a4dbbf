package runtime_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// crashIterationsEnv sets how many times TestCrashRecovery kills its child;
// the default keeps `go test` short, soak runs raise it.
const crashIterationsEnv = "BPFD_CRASH_ITERATIONS"

// crashSteps are the durable steps of a load and an unload, where the child
// kills itself in half of the iterations; in the other half the parent
// kills it at a random moment. load:chained and unload:unchained come right
// after an XDP or TC hook's chain was rebuilt and swapped, before the
// records say so; load:recorded, load:pinned and unload:recorded come right
// before or after a rebuild too when the program is on such a hook.
var crashSteps = []string{
	"load:recorded", "load:attached", "load:chained", "load:pinned", "load:committed",
	"unload:recorded", "unload:detached", "unload:unchained", "unload:deleted",
}

// TestCrashRecovery runs a child process that loads and unloads programs in
// a loop (chains of up to three XDP and three TC programs with random
// priorities and proceed-on sets, TCX where the kernel has it, tracepoints),
// SIGKILLs it at a step of a load or unload (rebuilds of chains among them)
// or at a random moment, opens a Manager on the same state and checks that
// the store, the bpffs and the kernel agree: each hook runs the chain its
// records say, whole.
func TestCrashRecovery(t *testing.T) {
	e := newEnv(t)
	v := newVethPair(t)
	kinds := []progtype.Kind{progtype.XDP, progtype.TC, progtype.Tracepoint}
	if kernelHasTCX(t) {
		kinds = append(kinds, progtype.TCX)
	}
	iterations := 140
	if s := os.Getenv(crashIterationsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", crashIterationsEnv, s)
		}
		iterations = n
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	kills := map[string]int{}
	for i := range iterations {
		step := ""
		if i%2 == 0 {
			step = crashSteps[(i/2)%len(crashSteps)]
		}
		outcome := runCrashChild(t, e, v, kinds, step, 1+rng.IntN(3), rng.Uint64())
		kills[outcome]++

		m := e.open(t)
		checkConsistent(t, e, m, v, slices.Contains(kinds, progtype.TCX))
		m.Close()
		if t.Failed() {
			t.Fatalf("inconsistent after iteration %d (%s)", i, outcome)
		}
	}
	t.Logf("%d iterations: %v", iterations, kills)

	m := e.open(t)
	progs, err := m.List(context.Background(), runtime.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range progs {
		if err := m.Unload(context.Background(), p.ID); err != nil {
			t.Fatal(err)
		}
	}
	assertEmpty(t, e, m)
	assertNoAttachments(t, v)
}

// runCrashChild runs one child loading programs of the kinds and kills it,
// at the nth pass through step (the child kills itself) or, when step is "",
// at a random moment after it is ready. It returns what happened.
func runCrashChild(t *testing.T, e *env, v *vethPair, kinds []progtype.Kind, step string, nth int, seed uint64) string {
	t.Helper()
	var names []string
	for _, k := range kinds {
		names = append(names, string(k))
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(),
		helperEnv+"=crash",
		"BPFD_STATE="+e.stateDir, "BPFD_BPFFS="+e.bpffs,
		"BPFD_HOST="+v.Host, "BPFD_PEER="+v.Peer, "BPFD_NETNS="+v.Netns,
		"BPFD_CRASH_KINDS="+strings.Join(names, ","),
		"BPFD_CRASH_STEP="+step, "BPFD_CRASH_NTH="+strconv.Itoa(nth),
		"BPFD_SEED="+strconv.FormatUint(seed, 10))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := new(limitedBuffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		ok := s.Scan() && s.Text() == "ready"
		ready <- ok
		for s.Scan() {
		}
	}()
	outcome := "killed at " + step
	if step == "" {
		if <-ready {
			delay := time.Duration(seed%40) * time.Millisecond
			time.Sleep(delay)
			outcome = "killed at random"
		}
		cmd.Process.Kill()
	}
	err = cmd.Wait()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled() && ws.Signal() == syscall.SIGKILL:
		return outcome
	case err == nil:
		return "finished without a kill"
	default:
		t.Fatalf("crash child: %v\n%s", err, stderr)
		return ""
	}
}

// checkConsistent checks that store, bpffs and kernel agree: every record
// is loaded, has its pins and a live kernel program on its hook, no pins
// lack a record, the peer's XDP and TC ingress hooks run the chains of the
// recorded programs (in the order of their ranks, each with its priority and
// proceed-on set), and the host's TCX egress hook (where the kernel has
// TCX) exactly the recorded tcx programs.
func checkConsistent(t *testing.T, e *env, m *runtime.Manager, v *vethPair, haveTCX bool) {
	t.Helper()
	ctx := context.Background()
	progs, err := m.List(ctx, runtime.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []runtime.ID
	var tcx []uint32
	chains := map[progtype.Kind][]runtime.Program{}
	for _, p := range progs {
		ids = append(ids, p.ID)
		if p.Kernel == nil {
			t.Errorf("program %d: no kernel program behind it", p.ID)
			continue
		}
		for _, mp := range p.Maps {
			if _, err := os.Stat(mp.PinPath); err != nil {
				t.Errorf("program %d: map pin: %v", p.ID, err)
			}
		}
		switch p.Kind {
		case progtype.XDP, progtype.TC:
			chains[p.Kind] = append(chains[p.Kind], p)
			continue
		case progtype.TCX:
			tcx = append(tcx, p.Kernel.ProgramID)
		}
		l, err := link.LoadPinnedLink(filepath.Join(p.PinPath, "link"), nil)
		if err != nil {
			t.Errorf("program %d: link pin: %v", p.ID, err)
			continue
		}
		info, err := l.Info()
		l.Close()
		if err != nil || uint32(info.Program) != p.Kernel.ProgramID {
			t.Errorf("program %d: link runs %v (%v), want %d", p.ID, info, err, p.Kernel.ProgramID)
		}
	}
	assertOnly(t, e, m, -1, ids...)
	for _, kind := range []progtype.Kind{progtype.XDP, progtype.TC} {
		chain := chains[kind]
		slices.SortFunc(chain, func(a, b runtime.Program) int {
			return dispatcher.Rank{Priority: a.Hook.Priority, Attached: a.LoadedAt, ID: uint64(a.ID)}.Compare(
				dispatcher.Rank{Priority: b.Hook.Priority, Attached: b.LoadedAt, ID: uint64(b.ID)})
		})
		if len(chain) > 0 {
			assertChain(t, e, m, chain...)
		} else if got := hookPrograms(t, kind, peerEnd(v), runtime.Ingress); len(got) != 0 {
			t.Errorf("%s hook of %s runs %v, the store has no program there", kind, v.Peer, got)
		}
	}
	dispatchers, _ := os.ReadDir(filepath.Join(e.bpffs, "dispatchers"))
	if len(dispatchers) != len(chains) {
		t.Errorf("%d dispatchers pinned, %d hooks have programs", len(dispatchers), len(chains))
	}
	sorted := func(s []uint32) []uint32 { s = slices.Clone(s); slices.Sort(s); return s }
	if !haveTCX {
		if len(tcx) != 0 {
			t.Errorf("store has TCX programs %v on a kernel without TCX", tcx)
		}
		return
	}
	if got := tcxProgIDs(t, v.Host, "", runtime.Egress); !slices.Equal(sorted(got), sorted(tcx)) {
		t.Errorf("TCX on %s runs %v, store says %v", v.Host, got, tcx)
	}
}

// crashHelper is the crash test's child: it opens a Manager on the state
// the parent names, says "ready", and loads and unloads programs of the
// kinds in BPFD_CRASH_KINDS until it is killed (or kills itself at
// BPFD_CRASH_STEP), or after 200 operations.
func crashHelper() int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, err); return 2 }
	var kinds []progtype.Kind
	for _, name := range strings.Split(os.Getenv("BPFD_CRASH_KINDS"), ",") {
		k, err := progtype.Parse(name)
		if err != nil {
			return fail(fmt.Errorf("BPFD_CRASH_KINDS: %w", err))
		}
		kinds = append(kinds, k)
	}
	seed, _ := strconv.ParseUint(os.Getenv("BPFD_SEED"), 10, 64)
	rng := rand.New(rand.NewPCG(seed, 1))
	if step := os.Getenv("BPFD_CRASH_STEP"); step != "" {
		left, _ := strconv.Atoi(os.Getenv("BPFD_CRASH_NTH"))
		runtime.SetStepHook(func(s string) {
			if s == step {
				if left--; left == 0 {
					syscall.Kill(os.Getpid(), syscall.SIGKILL)
				}
			}
		})
	}
	ctx := context.Background()
	e := &env{stateDir: os.Getenv("BPFD_STATE"), bpffs: os.Getenv("BPFD_BPFFS")}
	m, err := runtime.Open(ctx, runtime.Options{StateDir: e.stateDir, BPFFS: e.bpffs, LibxdpDir: e.libxdpDir()})
	if err != nil {
		return fail(err)
	}
	fmt.Println("ready")

	host, peer, netns := os.Getenv("BPFD_HOST"), os.Getenv("BPFD_PEER"), os.Getenv("BPFD_NETNS")
	// XDP and TC programs get priorities with ties and proceed-on sets at
	// random; each hook takes up to three.
	priorities := []int{10, 20, 20, 30}
	xdpProceedOn := [][]string{nil, {"pass"}, {"pass", "drop"}, {"dispatcher_return"}}
	tcProceedOn := [][]string{nil, {"ok"}, {"ok", "shot"}}
	request := func(kind progtype.Kind) fileLoad {
		prio := priorities[rng.IntN(len(priorities))]
		switch kind {
		case progtype.XDP:
			return fileLoad{"file:xdp_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{{Name: "xdp_counter", Kind: progtype.XDP,
				Attach: runtime.XDPAttach{Interface: peer, Netns: netns, Priority: prio, ProceedOn: xdpProceedOn[rng.IntN(len(xdpProceedOn))]}}}}}
		case progtype.TC:
			return fileLoad{"file:tc_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{{Name: "tc_counter", Kind: progtype.TC,
				Attach: runtime.TCAttach{Interface: peer, Netns: netns, Direction: runtime.Ingress, Priority: prio, ProceedOn: tcProceedOn[rng.IntN(len(tcProceedOn))]}}}}}
		case progtype.TCX:
			return fileLoad{"file:tc_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{{Name: "tcx_counter", Kind: progtype.TCX,
				Attach: runtime.TCXAttach{Interface: host, Direction: runtime.Egress, Priority: prio}}}}}
		}
		return fileLoad{"file:tracepoint_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{{Name: "tracepoint_counter",
			Kind: progtype.Tracepoint, Attach: runtime.TracepointAttach{Tracepoint: "syscalls/sys_enter_getpid"}}}}}
	}
	for range 200 {
		progs, err := m.List(ctx, runtime.ListOptions{})
		if err != nil {
			return fail(err)
		}
		if len(progs) > 0 && (len(progs) >= 8 || rng.IntN(2) == 0) {
			if err := m.Unload(ctx, progs[rng.IntN(len(progs))].ID); err != nil {
				return fail(err)
			}
			continue
		}
		kind := kinds[rng.IntN(len(kinds))]
		onHook := 0
		for _, p := range progs {
			if p.Kind == kind {
				onHook++
			}
		}
		if onHook >= 3 && (kind == progtype.XDP || kind == progtype.TC) {
			continue
		}
		r := request(kind)
		if _, err := load(ctx, m, r.ref, r.req); err != nil {
			return fail(err)
		}
	}
	m.Close()
	return 0
}

// limitedBuffer keeps the first 64 KiB written to it.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 64<<10 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }
