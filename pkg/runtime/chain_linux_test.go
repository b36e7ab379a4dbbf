package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

// chainKit is what the chain tests load on the peer's XDP hook or TC
// ingress hook: a counter of UDP packets that always proceeds, and a
// verdict program that counts every packet and stops it (drop, shot).
type chainKit struct {
	kind progtype.Kind
	// attach is the attach spec on the peer with a priority and proceed-on.
	attach func(v *vethPair, prio int, proceedOn ...string) runtime.AttachSpec
	// counterRef, counter: xdp_counter or tc_counter.
	counterRef, counter string
	// verdictRef, verdict, global: xdp_verdict or tc_verdict and the global
	// its return value is loaded into; stop is that value and stopName its
	// proceed-on name.
	verdictRef, verdict, global string
	stop                        int32
	stopName                    string
	// defaultProceedOn is the set a program gets when it names none.
	defaultProceedOn []string
}

var chainKits = []chainKit{
	{
		kind: progtype.XDP,
		attach: func(v *vethPair, prio int, proceedOn ...string) runtime.AttachSpec {
			return runtime.XDPAttach{Interface: v.Peer, Netns: v.Netns, Priority: prio, ProceedOn: proceedOn}
		},
		counterRef: "file:xdp_counter.bpf.o", counter: "xdp_counter",
		verdictRef: "file:xdp_verdict.bpf.o", verdict: "xdp_verdict", global: "verdict",
		stop: xdpDrop, stopName: "drop",
		defaultProceedOn: []string{"pass", "dispatcher_return"},
	},
	{
		kind: progtype.TC,
		attach: func(v *vethPair, prio int, proceedOn ...string) runtime.AttachSpec {
			return runtime.TCAttach{Interface: v.Peer, Netns: v.Netns, Direction: runtime.Ingress, Priority: prio, ProceedOn: proceedOn}
		},
		counterRef: "file:tc_counter.bpf.o", counter: "tc_counter",
		verdictRef: "file:tc_verdict.bpf.o", verdict: "tc_verdict", global: "action",
		stop: tcShot, stopName: "shot",
		defaultProceedOn: []string{"ok", "pipe", "dispatcher_return"},
	},
}

// forEachKit runs fn for XDP and TC in each dispatcher mode.
func forEachKit(t *testing.T, fn func(t *testing.T, mode runtime.DispatcherMode, k chainKit)) {
	for _, k := range chainKits {
		t.Run(string(k.kind), func(t *testing.T) {
			forEachMode(t, func(t *testing.T, mode runtime.DispatcherMode) { fn(t, mode, k) })
		})
	}
}

func (k chainKit) loadCounter(t *testing.T, m *runtime.Manager, v *vethPair, prio int, proceedOn ...string) runtime.Program {
	t.Helper()
	return loadOne(t, m, k.counterRef, k.counter, k.kind, k.attach(v, prio, proceedOn...), nil)
}

func (k chainKit) loadStopper(t *testing.T, m *runtime.Manager, v *vethPair, prio int, proceedOn ...string) runtime.Program {
	t.Helper()
	return loadOne(t, m, k.verdictRef, k.verdict, k.kind, k.attach(v, prio, proceedOn...), map[string][]byte{k.global: le32(k.stop)})
}

// TestChainOrderAndProceedOn puts three programs on one hook, loaded in
// another order than their priorities say, and sends real traffic:
//
//	priority 10: stopper, proceeds on pass and its own stop verdict
//	priority 20: stopper, proceeds on the default set: the chain ends here
//	priority 30: counter, loaded first
//
// Both stoppers count every packet and the counter none: the programs run
// by priority, each with its own proceed-on set. Unloading the middle one
// keeps the order of the others and the first one's proceed-on set, so the
// counter now counts every packet.
func TestChainOrderAndProceedOn(t *testing.T) {
	forEachKit(t, func(t *testing.T, mode runtime.DispatcherMode, k chainKit) {
		e := newModeEnv(t, mode)
		m := e.open(t)
		v := newVethPair(t)
		ctx := context.Background()

		counter := k.loadCounter(t, m, v, 30)
		first := k.loadStopper(t, m, v, 10, k.defaultProceedOn[0], k.stopName)
		middle := k.loadStopper(t, m, v, 20)
		if diff := slices.Compare(proceedOnOf(middle.Attach), k.defaultProceedOn); diff != 0 {
			t.Errorf("default proceed-on %v, want %v", proceedOnOf(middle.Attach), k.defaultProceedOn)
		}
		assertChain(t, e, m, first, middle, counter)

		// Packets may have come while the chain was being built.
		a0, b0 := globalU64(t, first), globalU64(t, middle)
		v.SendUDP(t, 20)
		eventually(t, "both stoppers to count every packet", func() bool {
			a, b := globalU64(t, first)-a0, globalU64(t, middle)-b0
			return a >= 20 && a == b
		})
		if n := udpCount(t, counter); n != 0 {
			t.Errorf("the counter after a stopper that ends the chain counted %d UDP packets", n)
		}

		if err := m.Unload(ctx, middle.ID); err != nil {
			t.Fatal(err)
		}
		assertChain(t, e, m, first, counter)
		before := globalU64(t, first)
		v.SendUDP(t, 20)
		eventually(t, "the counter to count what the first stopper let proceed", func() bool {
			return udpCount(t, counter) == 20 && globalU64(t, first) >= before+20
		})

		if err := m.Unload(ctx, first.ID, counter.ID); err != nil {
			t.Fatal(err)
		}
		assertEmpty(t, e, m)
		assertNoAttachments(t, v)
	})
}

// TestChainRebuildsKeepTraffic sends traffic without pause while programs
// join and leave the middle of a chain between two counters: every packet
// the hook sees runs through the whole chain, never through no chain or
// part of one (both counters count the same), and no packet reaches the
// peer's socket without being counted.
func TestChainRebuildsKeepTraffic(t *testing.T) {
	forEachKit(t, func(t *testing.T, mode runtime.DispatcherMode, k chainKit) {
		e := newModeEnv(t, mode)
		m := e.open(t)
		v := newVethPair(t)
		ctx := context.Background()
		head := k.loadCounter(t, m, v, 1)
		tail := k.loadCounter(t, m, v, 1000)
		l := listenPeer(t, v)

		s := startSending(t, v)
		rebuilds := 0
		for i := range 8 {
			mid := k.loadCounter(t, m, v, 100+i)
			other := k.loadStopper(t, m, v, 200+i, k.defaultProceedOn[0], k.stopName)
			if err := m.Unload(ctx, mid.ID, other.ID); err != nil {
				t.Fatal(err)
			}
			rebuilds += 4
		}
		sent := s.finish(t)

		eventually(t, "the counters to settle", func() bool {
			return udpCount(t, head) == udpCount(t, tail) && udpCount(t, head) >= uint64(l.count())
		})
		h, tl, got := udpCount(t, head), udpCount(t, tail), l.count()
		t.Logf("%d rebuilds: sent %d, head counted %d, tail %d, the peer received %d", rebuilds, sent, h, tl, got)
		if h != tl {
			t.Errorf("head counted %d, tail %d: packets ran through part of the chain", h, tl)
		}
		if uint64(got) > h {
			t.Errorf("the peer received %d datagrams, the chain counted %d: packets bypassed it", got, h)
		}
		if h == 0 || got == 0 {
			t.Errorf("no traffic went through: counted %d, received %d", h, got)
		}
		if err := m.Unload(ctx, head.ID, tail.ID); err != nil {
			t.Fatal(err)
		}
		assertEmpty(t, e, m)
	})
}

// TestLoneProgramShapeKeepsTraffic sends traffic without pause while a
// second program joins a lone one on its hook and leaves again, eight
// times: the lone program runs on its own, the two in a chain, and each
// change of shape is one swap, so every packet runs through the lone
// program (no packet reaches the peer's socket without it counting it).
func TestLoneProgramShapeKeepsTraffic(t *testing.T) {
	forEachKit(t, func(t *testing.T, mode runtime.DispatcherMode, k chainKit) {
		e := newModeEnv(t, mode)
		m := e.open(t)
		v := newVethPair(t)
		ctx := context.Background()
		head := k.loadCounter(t, m, v, 1)
		alone := assertChain(t, e, m, head)
		l := listenPeer(t, v)

		s := startSending(t, v)
		var tail runtime.Program
		for i := range 8 {
			tail = k.loadCounter(t, m, v, 900+i)
			if i == 0 {
				assertChain(t, e, m, head, tail)
			}
			if err := m.Unload(ctx, tail.ID); err != nil {
				t.Fatal(err)
			}
		}
		sent := s.finish(t)
		if again := assertChain(t, e, m, head); again.ProgramID == alone.ProgramID {
			t.Errorf("the lone program runs as kernel program %d again: its chain was never rebuilt", again.ProgramID)
		}

		eventually(t, "the counter to settle", func() bool { return udpCount(t, head) >= uint64(l.count()) })
		h, got := udpCount(t, head), l.count()
		t.Logf("16 changes of shape: sent %d, the lone program counted %d, the peer received %d", sent, h, got)
		if uint64(got) > h {
			t.Errorf("the peer received %d datagrams, the lone program counted %d: packets bypassed it", got, h)
		}
		if h == 0 || got == 0 {
			t.Errorf("no traffic went through: counted %d, received %d", h, got)
		}
		if err := m.Unload(ctx, head.ID); err != nil {
			t.Fatal(err)
		}
		assertEmpty(t, e, m)
	})
}

// TestLoneProgramRestart: a restarted Manager adopts a lone program that
// runs on its own as it runs, and one that an older bpfd left in a
// dispatcher chain of one it rebuilds, at Open, to run on its own; either
// way the program keeps counting and its record follows.
func TestLoneProgramRestart(t *testing.T) {
	forEachKit(t, func(t *testing.T, mode runtime.DispatcherMode, k chainKit) {
		e := newModeEnv(t, mode)
		m := e.open(t)
		v := newVethPair(t)
		ctx := context.Background()

		p := k.loadCounter(t, m, v, 10)
		direct := assertChain(t, e, m, p)
		m.Close()
		m = e.open(t)
		if got := assertChain(t, e, m, p); got.ProgramID != direct.ProgramID {
			t.Errorf("the hook runs %d after the restart, want the adopted lone program %d", got.ProgramID, direct.ProgramID)
		}
		if err := m.Unload(ctx, p.ID); err != nil {
			t.Fatal(err)
		}

		// An older bpfd's state: the lone program in a chain of one.
		runtime.SetChainLone(m, true)
		p = k.loadCounter(t, m, v, 10)
		old := chainOf(t, e, m, p)
		if old.Mode != mode {
			t.Fatalf("a bpfd chaining lone programs built a %q chain, want %q", old.Mode, mode)
		}
		v.SendUDP(t, 5)
		eventually(t, "5 packets counted in the chain of one", func() bool { return udpCount(t, p) == 5 })
		m.Close()

		m = e.open(t)
		assertChain(t, e, m, p)
		if !strings.Contains(e.logged(), "rebuilt the hook's chain to match the records") {
			t.Errorf("no log line of the rebuild:\n%s", e.logged())
		}
		got, err := m.Get(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Kernel == nil || got.Kernel.ProgramID == uint32(old.ProgramID) {
			t.Fatalf("after the restart the program's kernel program is %+v, want its own, not the chain %d", got.Kernel, old.ProgramID)
		}
		if _, err := os.Stat(filepath.Join(p.PinPath, "program")); err != nil {
			t.Errorf("program pin of the lone program: %v", err)
		}
		v.SendUDP(t, 5)
		eventually(t, "5 more packets counted on its own", func() bool { return udpCount(t, p) == 10 })
		if err := m.Unload(ctx, p.ID); err != nil {
			t.Fatal(err)
		}
		assertEmpty(t, e, m)
		assertNoAttachments(t, v)
	})
}

// TestChainVerifierFailure adds a program the verifier rejects to a chain
// of two: the load fails naming it, and the hook runs the chain it ran.
func TestChainVerifierFailure(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode runtime.DispatcherMode) {
		e := newModeEnv(t, mode)
		m := e.open(t)
		v := newVethPair(t)
		k := chainKits[0]
		a, b := k.loadCounter(t, m, v, 10), k.loadCounter(t, m, v, 20)
		before := assertChain(t, e, m, a, b)
		fds := openFDs(t)

		_, err := load(context.Background(), m, "file:"+filepath.Join(testdataDir, "verifier_reject.bpf.o"), runtime.LoadRequest{
			Programs: []runtime.ProgramRequest{{Name: "xdp_unchecked", Kind: progtype.XDP,
				Attach: runtime.XDPAttach{Interface: v.Peer, Netns: v.Netns, Priority: 15}}},
		})
		assertErr(t, err, runtime.ErrVerifier, "program xdp_unchecked: rejected by the verifier", "invalid access to packet")
		var ve *runtime.VerifierError
		if !errors.As(err, &ve) || ve.Program != "xdp_unchecked" {
			t.Errorf("error %v: want a *VerifierError naming xdp_unchecked", err)
		}
		t.Logf("error: %v", err)
		if after := assertChain(t, e, m, a, b); after.ProgramID != before.ProgramID {
			t.Errorf("the hook runs chain %d, want the one it ran, %d", after.ProgramID, before.ProgramID)
		}
		assertOnly(t, e, m, fds, a.ID, b.ID)
		if err := m.Unload(context.Background(), a.ID, b.ID); err != nil {
			t.Fatal(err)
		}
		assertEmpty(t, e, m)
	})
}

// TestChainTooMany loads ten programs on one hook in freplace mode, the
// most its dispatcher has slots for: an eleventh is refused with
// ErrConflict, and the hook keeps running the ten.
func TestChainTooMany(t *testing.T) {
	requireFreplace(t)
	e := newModeEnv(t, runtime.DispatcherFreplace)
	m := e.open(t)
	v := newVethPair(t)
	k := chainKits[0]
	var progs []runtime.Program
	var ids []runtime.ID
	for i := range 10 {
		p := k.loadCounter(t, m, v, 10+i)
		progs, ids = append(progs, p), append(ids, p.ID)
	}
	before := assertChain(t, e, m, progs...)
	fds := openFDs(t)
	_, err := load(context.Background(), m, k.counterRef, runtime.LoadRequest{
		Programs: []runtime.ProgramRequest{{Name: k.counter, Kind: k.kind, Attach: k.attach(v, 1)}}})
	assertErr(t, err, runtime.ErrConflict, "would run 11 xdp programs, freplace mode takes at most 10 on one hook")
	t.Logf("error: %v", err)
	if after := assertChain(t, e, m, progs...); after.ProgramID != before.ProgramID {
		t.Errorf("the hook runs chain %d, want the one it ran, %d", after.ProgramID, before.ProgramID)
	}
	assertOnly(t, e, m, fds, ids...)
	if err := m.Unload(context.Background(), ids...); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, e, m)
}

// TestChainRequestRejects checks the requests a chain refuses before the
// hook changes: a program asking for another XDP mode than the interface
// runs, priorities out of range, unknown proceed-on names.
func TestChainRequestRejects(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	v := newVethPair(t)
	k := chainKits[0]
	first := k.loadCounter(t, m, v, 10)
	cases := map[string]struct {
		attach    runtime.AttachSpec
		kind      progtype.Kind
		want      error
		fragments []string
	}{
		"another xdp mode": {
			attach: runtime.XDPAttach{Interface: v.Peer, Netns: v.Netns, Mode: runtime.XDPModeGeneric}, kind: progtype.XDP,
			want: runtime.ErrConflict, fragments: []string{"interface " + v.Peer, "runs its XDP programs in the default mode, not generic"},
		},
		"priority 0 is the default, 1001 out of range": {
			attach: runtime.XDPAttach{Interface: v.Peer, Netns: v.Netns, Priority: 1001}, kind: progtype.XDP,
			want: runtime.ErrInvalid, fragments: []string{"priority 1001: out of range 1-1000"},
		},
		"unknown xdp action": {
			attach: runtime.XDPAttach{Interface: v.Peer, Netns: v.Netns, ProceedOn: []string{"pass", "shot"}}, kind: progtype.XDP,
			want: runtime.ErrInvalid, fragments: []string{`proceed-on "shot": not a xdp action`},
		},
		"unknown tc action": {
			attach: runtime.TCAttach{Interface: v.Peer, Netns: v.Netns, Direction: runtime.Ingress, ProceedOn: []string{"drop"}}, kind: progtype.TC,
			want: runtime.ErrInvalid, fragments: []string{`proceed-on "drop": not a tc action`},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ref, prog := k.counterRef, k.counter
			if tc.kind == progtype.TC {
				ref, prog = "file:tc_counter.bpf.o", "tc_counter"
			}
			fds := openFDs(t)
			_, err := load(context.Background(), m, ref, runtime.LoadRequest{
				Programs: []runtime.ProgramRequest{{Name: prog, Kind: tc.kind, Attach: tc.attach}}})
			assertErr(t, err, tc.want, tc.fragments...)
			t.Logf("error: %v", err)
			assertOnly(t, e, m, fds, first.ID)
			assertChain(t, e, m, first)
		})
	}
	if err := m.Unload(context.Background(), first.ID); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, e, m)
}

// TestChainRestart closes a Manager with chains on the XDP and TC hooks and
// opens a new one: it adopts the chains as they run (the same kernel
// programs), and rebuilds them from its records for the next load, with
// the order and proceed-on sets kept.
func TestChainRestart(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode runtime.DispatcherMode) {
		e := newModeEnv(t, mode)
		m := e.open(t)
		v := newVethPair(t)
		ctx := context.Background()
		type chain struct {
			k     chainKit
			progs []runtime.Program
		}
		var chains []*chain
		for _, k := range chainKits {
			c := &chain{k: k}
			c.progs = []runtime.Program{k.loadStopper(t, m, v, 10, k.defaultProceedOn[0], k.stopName), k.loadCounter(t, m, v, 20)}
			chains = append(chains, c)
		}
		before := map[progtype.Kind]uint32{}
		for _, c := range chains {
			before[c.k.kind] = uint32(assertChain(t, e, m, c.progs...).ProgramID)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}

		m2 := e.open(t)
		var all []runtime.ID
		for _, c := range chains {
			if got := assertChain(t, e, m2, c.progs...).ProgramID; uint32(got) != before[c.k.kind] {
				t.Errorf("%s: the hook runs chain %d after the restart, want the adopted %d", c.k.kind, got, before[c.k.kind])
			}
			// A program joins between the two: the chain is rebuilt from the
			// records.
			mid := c.k.loadCounter(t, m2, v, 15)
			c.progs = []runtime.Program{c.progs[0], mid, c.progs[1]}
			assertChain(t, e, m2, c.progs...)
			for _, p := range c.progs {
				all = append(all, p.ID)
			}
		}
		v.SendUDP(t, 10)
		for _, c := range chains {
			eventually(t, string(c.k.kind)+" counters after the stopper to count", func() bool {
				return udpCount(t, c.progs[1]) == 10 && udpCount(t, c.progs[2]) == 10
			})
		}
		if err := m2.Unload(ctx, all...); err != nil {
			t.Fatal(err)
		}
		assertEmpty(t, e, m2)
		assertNoAttachments(t, v)
	})
}

// TestChainModeChange opens a Manager in linked mode over chains built in
// freplace mode: it rebuilds them in its own mode at Open.
func TestChainModeChange(t *testing.T) {
	requireFreplace(t)
	e := newModeEnv(t, runtime.DispatcherFreplace)
	m := e.open(t)
	v := newVethPair(t)
	k := chainKits[0]
	a, b := k.loadCounter(t, m, v, 10), k.loadStopper(t, m, v, 20)
	m.Close()

	e.mode = runtime.DispatcherLinked
	m2 := e.open(t)
	a, err := m2.Get(context.Background(), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, err = m2.Get(context.Background(), b.ID)
	if err != nil {
		t.Fatal(err)
	}
	assertChain(t, e, m2, a, b)
	if _, err := os.Stat(filepath.Join(a.PinPath, "program")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("program pin of a linked chain's program: %v, want none", err)
	}
	if err := m2.Unload(context.Background(), a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, e, m2)
}

// TestTCXPriorityOrder loads tcx programs out of priority order: the
// kernel runs them by priority, equal priorities in load order, also after
// one in the middle leaves and across a restart, and all before the chain of
// the hook's tc programs, which is one more program on the TCX hook.
func TestTCXPriorityOrder(t *testing.T) {
	testutil.RequireKernelFeature(t, testutil.FeatureTCX)
	e := newEnv(t)
	m := e.open(t)
	v := newVethPair(t)
	ctx := context.Background()
	tc := loadOne(t, m, "file:tc_counter.bpf.o", "tc_counter", progtype.TC,
		runtime.TCAttach{Interface: v.Peer, Netns: v.Netns, Direction: runtime.Ingress}, nil)
	load := func(m *runtime.Manager, prio int) runtime.Program {
		return loadOne(t, m, "file:tc_counter.bpf.o", "tcx_counter", progtype.TCX,
			runtime.TCXAttach{Interface: v.Peer, Netns: v.Netns, Direction: runtime.Ingress, Priority: prio}, nil)
	}
	assertOrder := func(m *runtime.Manager, progs ...runtime.Program) {
		t.Helper()
		var want []uint32
		for i, p := range progs {
			want = append(want, p.Kernel.ProgramID)
			got, err := m.Get(ctx, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Hook.Position != i || got.Hook.Mode != "" {
				t.Errorf("program %d (priority %d): hook %+v, want position %d and no dispatcher", p.ID, p.Hook.Priority, got.Hook, i)
			}
		}
		want = append(want, uint32(chainOf(t, e, m, tc).ProgramID))
		if got := tcxProgIDs(t, v.Peer, v.Netns, runtime.Ingress); !slices.Equal(got, want) {
			t.Errorf("TCX runs %v, want %v (the tc chain last)", got, want)
		}
	}
	p30, p10, p20, p10b := load(m, 30), load(m, 10), load(m, 20), load(m, 10)
	assertOrder(m, p10, p10b, p20, p30)
	if err := m.Unload(ctx, p20.ID); err != nil {
		t.Fatal(err)
	}
	p15 := load(m, 15)
	assertOrder(m, p10, p10b, p15, p30)
	m.Close()

	m2 := e.open(t)
	p5, p1000 := load(m2, 5), load(m2, 1000)
	assertOrder(m2, p5, p10, p10b, p15, p30, p1000)
	v.SendUDP(t, 10)
	// tcx_counter returns TCX_NEXT: every program runs, the tc chain too.
	for _, p := range []runtime.Program{p5, p10, p15, p1000, tc} {
		eventually(t, fmt.Sprintf("program %d to count", p.ID), func() bool { return udpCount(t, p) == 10 })
	}
	if err := m2.Unload(ctx, p5.ID, p10.ID, p10b.ID, p15.ID, p30.ID, p1000.ID, tc.ID); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, e, m2)
}

// TestChainInterfaceGone deletes the interface under chains of XDP and TC
// programs: the programs unload one by one all the same, and nothing stays
// pinned.
func TestChainInterfaceGone(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode runtime.DispatcherMode) {
		e := newModeEnv(t, mode)
		m := e.open(t)
		v := newVethPair(t)
		var ids []runtime.ID
		for _, k := range chainKits {
			ids = append(ids, k.loadCounter(t, m, v, 10).ID, k.loadCounter(t, m, v, 20).ID)
		}
		if err := netlink.LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: v.Host}}); err != nil {
			t.Fatalf("delete veth %s: %v", v.Host, err)
		}
		for _, id := range ids {
			if err := m.Unload(context.Background(), id); err != nil {
				t.Fatalf("unload %d from a deleted interface: %v", id, err)
			}
		}
		assertEmpty(t, e, m)
	})
}

// TestXDPLoaderShowsChain runs Debian's xdp-loader status (BPFD_XDP_LOADER,
// or xdp-loader on the PATH) on an interface with a freplace chain: it
// shows bpfd's programs with their priorities and proceed-on actions.
func TestXDPLoaderShowsChain(t *testing.T) {
	requireFreplace(t)
	xdpLoader := os.Getenv("BPFD_XDP_LOADER")
	if xdpLoader == "" {
		var err error
		if xdpLoader, err = exec.LookPath("xdp-loader"); err != nil {
			t.Skip("no xdp-loader: apt-get install xdp-tools, or set BPFD_XDP_LOADER")
		}
	}
	e := newModeEnv(t, runtime.DispatcherFreplace)
	m := e.open(t)
	v := newVethPair(t)
	k := chainKits[0]
	a, b := k.loadStopper(t, m, v, 100, "pass", "drop"), k.loadCounter(t, m, v, 200)
	var out []byte
	err := inNetns(v.Netns, func() error {
		cmd := exec.Command(xdpLoader, "status", v.Peer)
		cmd.Env = append(os.Environ(), "LIBXDP_BPFFS="+e.bpffs)
		var err error
		out, err = cmd.CombinedOutput()
		return err
	})
	t.Logf("xdp-loader status %s:\n%s", v.Peer, out)
	if err != nil {
		t.Fatalf("xdp-loader status: %v", err)
	}
	for _, w := range []string{"xdp_dispatcher", "xdp_verdict", "xdp_counter", "100", "200", "XDP_DROP"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("xdp-loader status does not show %q", w)
		}
	}
	if err := m.Unload(context.Background(), a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, e, m)
}

// TestGetDuringChainRebuilds reads a chain member with Get and List while
// another caller rebuilds its chain again and again (each rebuild replaces
// the kernel program that runs the member and frees the old one): every
// read reports the member with its kernel program, never without one.
func TestGetDuringChainRebuilds(t *testing.T) {
	forEachKit(t, func(t *testing.T, mode runtime.DispatcherMode, k chainKit) {
		e := newModeEnv(t, mode)
		m := e.open(t)
		v := newVethPair(t)
		ctx := context.Background()
		member := k.loadCounter(t, m, v, 10)
		k.loadCounter(t, m, v, 20)

		const rebuilds = 40
		done := make(chan error, 1)
		stop := make(chan struct{})
		go func() {
			defer close(done)
			for range rebuilds {
				select {
				case <-stop:
					return
				default:
				}
				progs, err := load(ctx, m, k.counterRef, runtime.LoadRequest{Programs: []runtime.ProgramRequest{
					{Name: k.counter, Kind: k.kind, Attach: k.attach(v, 30)}}})
				if err == nil {
					err = m.Unload(ctx, progs[0].ID)
				}
				if err != nil {
					done <- err
					return
				}
			}
		}()
		defer func() { close(stop); <-done }()
		reads := 0
		for running := true; running; reads++ {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				running = false
			default:
			}
			p, err := m.Get(ctx, member.ID)
			if err != nil || p.Kernel == nil {
				t.Fatalf("read %d, Get %d during a rebuild: kernel %+v, %v", reads, member.ID, p.Kernel, err)
			}
			list, err := m.List(ctx, runtime.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range list {
				if p.ID == member.ID && p.Kernel == nil {
					t.Fatalf("read %d, List during a rebuild shows %d without its kernel program", reads, member.ID)
				}
			}
		}
		t.Logf("%d reads across %d rebuilds", reads, rebuilds)
	})
}
