package dispatcher_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// chainTest is a hook in a test network with three counting programs ready
// to be chained on it: first counts every frame it sees, stopper stops the
// chain (XDP_DROP, TC_ACT_SHOT) unless given a wider proceed-on set, and
// last counts the frames that reach it.
type chainTest struct {
	net   *testNet
	hook  dispatcher.Hook
	first dispatcher.Member
	stop  dispatcher.Member
	last  dispatcher.Member
	// stopProceeds is a set on which the stopper proceeds.
	stopProceeds []string
	// seen reads how many frames each of first, stopper and last saw.
	seen func(t testing.TB) [3]uint64
}

func newXDPChainTest(t *testing.T) *chainTest {
	n := newTestNet(t)
	ct := &chainTest{
		net:   n,
		hook:  dispatcher.Hook{Kind: progtype.XDP, Ifindex: n.rx, Netns: n.netns},
		first: member(t, progtype.XDP, 1, 100, program{object: "packet_counters", name: "xdp_ingress_counter"}),
		stop:  member(t, progtype.XDP, 2, 200, program{object: "xdp_verdict", name: "xdp_verdict", globals: map[string]any{"verdict": uint32(xdpDrop)}}),
		last:  member(t, progtype.XDP, 3, 300, program{object: "xdp_counter", name: "xdp_counter"}),

		stopProceeds: []string{"pass", "drop"},
	}
	ct.seen = func(t testing.TB) [3]uint64 {
		return [3]uint64{
			counter(t, ct.first.Maps["packet_stats"], 0),
			counter(t, ct.stop.Maps[".bss"], 0),
			counter(t, ct.last.Maps["xdp_stats"], experimentalProto),
		}
	}
	return ct
}

func newTCChainTest(t *testing.T, how dispatcher.TCAttach) *chainTest {
	n := newTestNet(t)
	tr := newTracer(t, progtype.TC)
	ct := &chainTest{
		net:   n,
		hook:  dispatcher.Hook{Kind: progtype.TC, Ifindex: n.rx, Netns: n.netns, Direction: dispatcher.Ingress},
		first: member(t, progtype.TC, 1, 100, program{object: "packet_counters", name: "tc_egress_counter"}),
		stop:  tr.member(t, 2, 200, step{ret: tcShot}),
		last:  member(t, progtype.TC, 3, 300, program{object: "tc_counter", name: "tc_counter"}),

		stopProceeds: []string{"ok", "shot"},
	}
	ct.seen = func(t testing.TB) [3]uint64 {
		var traced uint32
		if err := tr.trace.Lookup(uint32(0), &traced); err != nil {
			t.Fatal(err)
		}
		return [3]uint64{
			counter(t, ct.first.Maps["packet_stats"], 1),
			uint64(traced),
			counter(t, ct.last.Maps["tc_stats"], experimentalProto),
		}
	}
	return ct
}

// forEachHook runs fn for an XDP hook and for a TC hook attached each way
// the kernel has, in each mode.
func forEachHook(t *testing.T, fn func(t *testing.T, ct *chainTest, opts dispatcher.Options)) {
	forEachMode(t, func(t *testing.T, mode dispatcher.Mode) {
		t.Run("xdp", func(t *testing.T) {
			fn(t, newXDPChainTest(t), dispatcher.Options{Mode: mode})
		})
		t.Run("tc/tcx", func(t *testing.T) {
			testutil.RequireKernelFeature(t, testutil.FeatureTCX)
			fn(t, newTCChainTest(t, dispatcher.TCAttachTCX), dispatcher.Options{Mode: mode, TCAttach: dispatcher.TCAttachTCX})
		})
		t.Run("tc/netlink", func(t *testing.T) {
			fn(t, newTCChainTest(t, dispatcher.TCAttachNetlink), dispatcher.Options{Mode: mode, TCAttach: dispatcher.TCAttachNetlink})
		})
	})
}

// open opens the hook's dispatcher until the test ends.
func (ct *chainTest) open(t testing.TB, opts dispatcher.Options) *dispatcher.Dispatcher {
	t.Helper()
	d, err := dispatcher.Open(ct.hook, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close the dispatcher: %v", err)
		}
	})
	return d
}

// sendAndExpect sends n frames and waits until first, stopper and last have
// seen want frames in all.
func (ct *chainTest) sendAndExpect(t testing.TB, n int, want [3]uint64) {
	t.Helper()
	ct.net.send(t, n)
	var got [3]uint64
	deadline := time.Now().Add(5 * time.Second)
	for got = ct.seen(t); got != want && time.Now().Before(deadline); got = ct.seen(t) {
		time.Sleep(10 * time.Millisecond)
	}
	if got != want {
		t.Fatalf("frames seen by [first stopper last] = %v, want %v", got, want)
	}
}

// proceedOn returns m proceeding on the named actions.
func (ct *chainTest) proceedOn(t testing.TB, m dispatcher.Member, names ...string) dispatcher.Member {
	t.Helper()
	var err error
	if m.ProceedOn, err = dispatcher.ParseProceedOn(ct.hook.Kind, names); err != nil {
		t.Fatal(err)
	}
	return m
}

// apply applies members and checks the state the dispatcher reports: a
// chain in mode, or the lone member on its own.
func apply(t testing.TB, d *dispatcher.Dispatcher, mode dispatcher.Mode, members ...dispatcher.Member) {
	t.Helper()
	if err := d.Apply(members); err != nil {
		t.Fatal(err)
	}
	got := d.State()
	mode = dispatcher.ChainMode(mode, len(members))
	if got.Mode != mode || got.ProgramID == 0 || got.Attachment == "" {
		t.Fatalf("State() = %+v, want a %s chain attached", got, mode)
	}
	if mode == dispatcher.ModeDirect && (got.Slots[0].ProgramID != got.ProgramID || runningName(t, got) != members[0].Name) {
		t.Fatalf("State() = %+v: the lone program %s is not what the hook runs", got, members[0].Name)
	}
	want := make([]dispatcher.Slot, len(members))
	for i, m := range members {
		want[i] = dispatcher.Slot{Position: i, ID: m.ID, Name: m.Name, Priority: m.Priority, ProceedOn: m.ProceedOn}
	}
	if diff := cmp.Diff(want, got.Slots, cmpopts.IgnoreFields(dispatcher.Slot{}, "ProgramID")); diff != "" {
		t.Fatalf("State().Slots (-want +got):\n%s", diff)
	}
}

// TestChainOnHook chains three programs on a veth in a namespace and counts
// real traffic through each: the stopper ends the chain until its
// proceed-on set holds its verdict; removing it from the middle keeps the
// others in order with their sets.
func TestChainOnHook(t *testing.T) {
	forEachHook(t, func(t *testing.T, ct *chainTest, opts dispatcher.Options) {
		d := ct.open(t, opts)
		apply(t, d, opts.Mode, ct.first, ct.stop, ct.last)
		ct.sendAndExpect(t, 10, [3]uint64{10, 10, 0})

		apply(t, d, opts.Mode, ct.first, ct.proceedOn(t, ct.stop, ct.stopProceeds...), ct.last)
		ct.sendAndExpect(t, 10, [3]uint64{20, 20, 10})

		apply(t, d, opts.Mode, ct.first, ct.last)
		ct.sendAndExpect(t, 10, [3]uint64{30, 20, 20})
		t.Logf("%s: %+v", ct.hook, d.State())

		if err := d.Apply(nil); err != nil {
			t.Fatal(err)
		}
		if s := d.State(); s.ProgramID != 0 || s.Attachment != "" {
			t.Fatalf("State() after Apply(nil) = %+v, want nothing attached", s)
		}
		ct.sendAndExpect(t, 10, [3]uint64{30, 20, 20})
	})
}

// TestSwapUnderTraffic sends frames without pause while it rebuilds the
// chain over and over, adding and removing programs after the first: the
// first program counts every frame, so none ever met a hook without a chain
// or a chain without its first program.
func TestSwapUnderTraffic(t *testing.T) {
	forEachHook(t, func(t *testing.T, ct *chainTest, opts dispatcher.Options) {
		d := ct.open(t, opts)
		passing := ct.proceedOn(t, ct.stop, ct.stopProceeds...)
		chains := [][]dispatcher.Member{
			{ct.first}, {ct.first, ct.last}, {ct.first, passing, ct.last}, {ct.first, ct.stop}, {ct.first, passing},
		}
		apply(t, d, opts.Mode, chains[0]...)

		// The sender sends frames in batches until 50 swaps are done.
		const swaps, batch = 50, 500
		var stop atomic.Bool
		sent := make(chan error, 1)
		frames := 0
		go func() {
			for !stop.Load() {
				if err := ct.net.sendErr(batch); err != nil {
					sent <- err
					return
				}
				frames += batch
			}
			sent <- nil
		}()
		for i := range swaps {
			if err := d.Apply(chains[(i+1)%len(chains)]); err != nil {
				stop.Store(true)
				<-sent
				t.Fatalf("swap %d: %v", i, err)
			}
		}
		stop.Store(true)
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		eventually(t, "the first program counted every frame", func() bool { return ct.seen(t)[0] >= uint64(frames) })
		if got := ct.seen(t); got[0] != uint64(frames) {
			t.Fatalf("the first program counted %d of %d frames", got[0], frames)
		}
		t.Logf("%d swaps while sending %d frames; seen by [first stopper last]: %v", swaps, frames, ct.seen(t))
	})
}

// TestFailedApplyKeepsChain: a program the verifier rejects, or one program
// too many, leaves the chain on the hook as it was.
func TestFailedApplyKeepsChain(t *testing.T) {
	forEachHook(t, func(t *testing.T, ct *chainTest, opts dispatcher.Options) {
		d := ct.open(t, opts)
		apply(t, d, opts.Mode, ct.first, ct.last)
		before := d.State()

		kind := ct.hook.Kind
		bad := member(t, kind, 99, 150, program{object: "../testdata/verifier_reject", name: "xdp_unchecked"})
		if kind == progtype.TC {
			bad = member(t, kind, 99, 150, program{object: "testdata/tc_reject", name: "tc_unchecked"})
		}
		err := d.Apply([]dispatcher.Member{ct.first, bad, ct.last})
		var me *dispatcher.MemberError
		if !errors.As(err, &me) || me.ID != 99 {
			t.Fatalf("Apply with a program the verifier rejects: %v, want a MemberError for id 99", err)
		}
		t.Logf("Apply: %v", err)

		tr := newTracer(t, kind)
		many := []dispatcher.Member{ct.first}
		for i := range opts.Mode.MaxPrograms() {
			many = append(many, tr.member(t, uint32(10+i), 500, step{}))
		}
		if err := d.Apply(many); !errors.Is(err, dispatcher.ErrTooMany) {
			t.Fatalf("Apply of %d programs: %v, want ErrTooMany", len(many), err)
		}
		t.Logf("Apply: %v", err)

		if diff := cmp.Diff(before, d.State()); diff != "" {
			t.Fatalf("State() after failed Applies (-before +after):\n%s", diff)
		}
		ct.sendAndExpect(t, 10, [3]uint64{10, 0, 10})
	})
}

// TestRemovingMiddleKeepsOrder runs the chain attached to an XDP hook with
// BPF_PROG_TEST_RUN while programs leave it from the middle: the others
// keep their order and their proceed-on sets.
func TestRemovingMiddleKeepsOrder(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode dispatcher.Mode) {
		ct := newXDPChainTest(t)
		d := ct.open(t, dispatcher.Options{Mode: mode})
		tr := newTracer(t, progtype.XDP)
		m1 := tr.member(t, 1, 10, step{ret: xdpPass})
		m2 := tr.member(t, 2, 20, step{ret: xdpPass})
		m3 := tr.member(t, 3, 20, step{ret: xdpDrop, proceedOn: []string{"pass", "drop"}})
		m4 := tr.member(t, 4, 30, step{ret: xdpTx, proceedOn: []string{"tx"}})
		m5 := tr.member(t, 5, 40, step{ret: xdpPass})
		steps := []struct {
			members  []dispatcher.Member
			wantTags []uint32
		}{
			{[]dispatcher.Member{m1, m2, m3, m4, m5}, []uint32{1, 2, 3, 4, 5}},
			{[]dispatcher.Member{m1, m3, m4, m5}, []uint32{1, 3, 4, 5}},
			{[]dispatcher.Member{m1, m3, m5}, []uint32{1, 3, 5}},
			{[]dispatcher.Member{m1, m5}, []uint32{1, 5}},
		}
		for _, s := range steps {
			apply(t, d, mode, s.members...)
			running, err := ebpf.NewProgramFromID(d.State().ProgramID)
			if err != nil {
				t.Fatal(err)
			}
			ret, tags := tr.run(t, running)
			running.Close()
			if diff := cmp.Diff(s.wantTags, tags); diff != "" || ret != xdpPass {
				t.Fatalf("chain %v returned %d, want %d; programs run (-want +got):\n%s", ids(d.State().Slots), ret, xdpPass, diff)
			}
		}
	})
}
