package dispatcher_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/google/go-cmp/cmp"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// XDP verdicts and TC actions the tests use.
const (
	xdpAborted  = 0
	xdpDrop     = 1
	xdpPass     = 2
	xdpTx       = 3
	xdpRedirect = 4

	tcUnspec   = -1
	tcOK       = 0
	tcShot     = 2
	tcPipe     = 3
	tcRedirect = 7
)

// step is one program of a traced chain: what it returns and on what its
// successor runs (nil: the default set).
type step struct {
	ret       int32
	proceedOn []string
}

// tracer makes chain_trace members that record into one shared map.
type tracer struct {
	kind  progtype.Kind
	trace *ebpf.Map
}

func newTracer(t testing.TB, kind progtype.Kind) *tracer {
	t.Helper()
	m, err := ebpf.NewMap(objectSpec(t, "chain_trace").Maps["trace"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &tracer{kind: kind, trace: m}
}

// member returns a chain_trace instance with tag (also its id) returning s.ret.
func (tr *tracer) member(t testing.TB, tag uint32, priority int, s step) dispatcher.Member {
	t.Helper()
	p := program{object: "chain_trace", name: "trace_xdp",
		globals: map[string]any{"tag": tag, "verdict": s.ret}, shared: map[string]*ebpf.Map{"trace": tr.trace}}
	if tr.kind == progtype.TC {
		p.name, p.globals = "trace_tc", map[string]any{"tag": tag, "action": s.ret}
	}
	m := member(t, tr.kind, uint64(tag), priority, p)
	m.Name = fmt.Sprintf("%s#%d", p.name, tag)
	if s.proceedOn != nil {
		var err error
		if m.ProceedOn, err = dispatcher.ParseProceedOn(tr.kind, s.proceedOn); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// members returns one member per step, tagged 1, 2, ... in order.
func (tr *tracer) members(t testing.TB, steps []step) []dispatcher.Member {
	var ms []dispatcher.Member
	for i, s := range steps {
		ms = append(ms, tr.member(t, uint32(i+1), 10*(i+1), s))
	}
	return ms
}

// run runs prog once on a 64-byte packet and returns its result and the
// tags the trace recorded, in order.
func (tr *tracer) run(t testing.TB, prog *ebpf.Program) (int32, []uint32) {
	t.Helper()
	if err := tr.trace.Put(uint32(0), uint32(0)); err != nil {
		t.Fatal(err)
	}
	ret, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 64)})
	if err != nil {
		t.Fatalf("run the chain: %v", err)
	}
	var n uint32
	if err := tr.trace.Lookup(uint32(0), &n); err != nil {
		t.Fatal(err)
	}
	tags := []uint32{}
	for i := uint32(1); i <= n; i++ {
		var tag uint32
		if err := tr.trace.Lookup(i, &tag); err != nil {
			t.Fatal(err)
		}
		tags = append(tags, tag)
	}
	return int32(ret), tags
}

// TestProceedOn runs chains with BPF_PROG_TEST_RUN: each program runs when
// its predecessor's return value is in the predecessor's proceed-on set, and
// the first value outside its program's set is the chain's result.
func TestProceedOn(t *testing.T) {
	cases := map[string]struct {
		kind     progtype.Kind
		steps    []step
		wantRet  int32
		wantTags []uint32
	}{
		"xdp: pass proceeds by default": {
			kind: progtype.XDP, steps: []step{{ret: xdpPass}, {ret: xdpPass}, {ret: xdpPass}},
			wantRet: xdpPass, wantTags: []uint32{1, 2, 3},
		},
		"xdp: drop stops the chain by default": {
			kind: progtype.XDP, steps: []step{{ret: xdpPass}, {ret: xdpDrop}, {ret: xdpPass}},
			wantRet: xdpDrop, wantTags: []uint32{1, 2},
		},
		"xdp: drop proceeds when in the set": {
			kind: progtype.XDP, steps: []step{{ret: xdpDrop, proceedOn: []string{"drop"}}, {ret: xdpPass}},
			wantRet: xdpPass, wantTags: []uint32{1, 2},
		},
		"xdp: the empty set stops even on pass": {
			kind: progtype.XDP, steps: []step{{ret: xdpPass, proceedOn: []string{}}, {ret: xdpDrop}},
			wantRet: xdpPass, wantTags: []uint32{1},
		},
		"xdp: each program's set applies to its own verdict": {
			kind: progtype.XDP, steps: []step{{ret: xdpPass, proceedOn: []string{"drop"}}, {ret: xdpDrop}},
			wantRet: xdpPass, wantTags: []uint32{1},
		},
		"xdp: aborted, tx and redirect proceed when in the set": {
			kind: progtype.XDP, steps: []step{
				{ret: xdpAborted, proceedOn: []string{"aborted"}},
				{ret: xdpTx, proceedOn: []string{"tx"}},
				{ret: xdpRedirect, proceedOn: []string{"redirect"}},
				{ret: xdpTx},
			},
			wantRet: xdpTx, wantTags: []uint32{1, 2, 3, 4},
		},
		"xdp: the chain passes when the last program proceeds": {
			kind: progtype.XDP, steps: []step{{ret: xdpPass}, {ret: xdpDrop, proceedOn: []string{"pass", "drop"}}},
			wantRet: xdpPass, wantTags: []uint32{1, 2},
		},
		"xdp: a verdict no set can hold stops the chain": {
			kind: progtype.XDP, steps: []step{{ret: 40, proceedOn: dispatcher.ActionNames(progtype.XDP)}, {ret: xdpPass}},
			wantRet: 40, wantTags: []uint32{1},
		},
		"tc: ok and pipe proceed by default": {
			kind: progtype.TC, steps: []step{{ret: tcOK}, {ret: tcPipe}, {ret: tcOK}},
			wantRet: tcOK, wantTags: []uint32{1, 2, 3},
		},
		"tc: shot stops the chain by default": {
			kind: progtype.TC, steps: []step{{ret: tcOK}, {ret: tcShot}, {ret: tcOK}},
			wantRet: tcShot, wantTags: []uint32{1, 2},
		},
		"tc: unspec stops the chain by default": {
			kind: progtype.TC, steps: []step{{ret: tcUnspec}, {ret: tcOK}},
			wantRet: tcUnspec, wantTags: []uint32{1},
		},
		"tc: unspec proceeds when in the set": {
			kind: progtype.TC, steps: []step{{ret: tcUnspec, proceedOn: []string{"unspec"}}, {ret: tcShot}},
			wantRet: tcShot, wantTags: []uint32{1, 2},
		},
		"tc: redirect and shot proceed when in the set": {
			kind: progtype.TC, steps: []step{
				{ret: tcRedirect, proceedOn: []string{"redirect"}},
				{ret: tcShot, proceedOn: []string{"shot"}},
				{ret: tcPipe},
			},
			wantRet: tcOK, wantTags: []uint32{1, 2, 3},
		},
		"tc: an action no set can hold stops the chain": {
			kind: progtype.TC, steps: []step{{ret: 40, proceedOn: dispatcher.ActionNames(progtype.TC)}, {ret: tcOK}},
			wantRet: 40, wantTags: []uint32{1},
		},
	}
	forEachMode(t, func(t *testing.T, mode dispatcher.Mode) {
		for name, tc := range cases {
			t.Run(name, func(t *testing.T) {
				tr := newTracer(t, tc.kind)
				c, err := dispatcher.Build(tc.kind, mode, tr.members(t, tc.steps))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				ret, tags := tr.run(t, c.Program())
				if ret != tc.wantRet {
					t.Errorf("chain returned %d, want %d", ret, tc.wantRet)
				}
				if diff := cmp.Diff(tc.wantTags, tags); diff != "" {
					t.Errorf("programs run (-want +got):\n%s", diff)
				}
			})
		}
	})
}

// TestChainKeepsEachInstancesGlobals builds a chain of one program loaded
// four times with different read-only globals: each instance keeps its own.
func TestChainKeepsEachInstancesGlobals(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode dispatcher.Mode) {
		tr := newTracer(t, progtype.XDP)
		ms := []dispatcher.Member{
			tr.member(t, 7, 1, step{ret: xdpPass}),
			tr.member(t, 3, 1, step{ret: xdpPass}),
			tr.member(t, 9, 2, step{ret: xdpTx, proceedOn: []string{"tx"}}),
			tr.member(t, 4, 5, step{ret: xdpDrop}),
		}
		c, err := dispatcher.Build(progtype.XDP, mode, ms)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ret, tags := tr.run(t, c.Program())
		if diff := cmp.Diff([]uint32{7, 3, 9, 4}, tags); diff != "" || ret != xdpDrop {
			t.Errorf("chain returned %d, want %d; programs run (-want +got):\n%s", ret, xdpDrop, diff)
		}
		var ids []uint64
		for _, s := range c.Slots() {
			ids = append(ids, s.ID)
		}
		if diff := cmp.Diff([]uint64{7, 3, 9, 4}, ids); diff != "" {
			t.Errorf("slots (-want +got):\n%s", diff)
		}
	})
}

// TestChainRefusesAProgramTheVerifierRejects builds a chain with a program
// that reads a packet without a bounds check: the error names it and carries
// the verifier's reason.
func TestChainRefusesAProgramTheVerifierRejects(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode dispatcher.Mode) {
		tr := newTracer(t, progtype.XDP)
		bad := member(t, progtype.XDP, 99, 20, program{object: "../testdata/verifier_reject", name: "xdp_unchecked"})
		ms := []dispatcher.Member{tr.member(t, 1, 10, step{ret: xdpPass}), bad, tr.member(t, 2, 30, step{ret: xdpPass})}
		_, err := dispatcher.Build(progtype.XDP, mode, ms)
		var me *dispatcher.MemberError
		if !errors.As(err, &me) || me.ID != 99 || me.Name != "xdp_unchecked" {
			t.Fatalf("Build: %v, want a MemberError for xdp_unchecked (id 99)", err)
		}
		var ve *ebpf.VerifierError
		if !errors.As(err, &ve) {
			t.Fatalf("Build: %v, want a verifier error", err)
		}
		t.Logf("Build: %v", err)
	})
}

// TestChainLimits refuses more programs than each mode takes, before the
// kernel sees them, and builds the longest chain each mode takes.
func TestChainLimits(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode dispatcher.Mode) {
		tr := newTracer(t, progtype.XDP)
		var ms []dispatcher.Member
		for i := range mode.MaxPrograms() + 1 {
			ms = append(ms, tr.member(t, uint32(i+1), 1, step{ret: xdpPass}))
		}
		_, err := dispatcher.Build(progtype.XDP, mode, ms)
		if !errors.Is(err, dispatcher.ErrTooMany) {
			t.Fatalf("Build of %d programs: %v, want ErrTooMany", len(ms), err)
		}
		t.Logf("Build of %d programs: %v", len(ms), err)

		if mode == dispatcher.ModeLinked {
			// A chain is one program, which the kernel lets use 64 maps: at
			// most 63 chain_trace instances (63 .rodata and trace). Build
			// the longest chain of programs without maps instead.
			for i := range ms {
				ms[i].Program, ms[i].Maps = passProgram(), nil
			}
		}
		c, err := dispatcher.Build(progtype.XDP, mode, ms[:mode.MaxPrograms()])
		if err != nil {
			t.Fatalf("Build of %d programs: %v", mode.MaxPrograms(), err)
		}
		defer c.Close()
		if ret, _ := tr.run(t, c.Program()); ret != xdpPass {
			t.Errorf("chain of %d returned %d, want %d", mode.MaxPrograms(), ret, xdpPass)
		}
	})
}

// passProgram returns an XDP program without maps or BTF that passes every
// packet.
func passProgram() *ebpf.ProgramSpec {
	return &ebpf.ProgramSpec{Name: "pass", Type: ebpf.XDP, License: "GPL", Instructions: asm.Instructions{
		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol("pass"),
		asm.Return(),
	}}
}
