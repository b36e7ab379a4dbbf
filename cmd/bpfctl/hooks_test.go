package main

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// chainPrograms are a List response: a linked XDP chain listed out of
// order, a tcx hook, a tracepoint and a program bpfd did not load.
func chainPrograms() []*bpfdv1.Program {
	xdp := func(id uint64, name string, pos uint32, prio int32, proceedOn ...bpfdv1.XdpAction) *bpfdv1.Program {
		return &bpfdv1.Program{
			Id: id, Managed: true, Name: name, Type: bpfdv1.ProgramType_PROGRAM_TYPE_XDP,
			Attach: &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Xdp{Xdp: &bpfdv1.XdpAttach{Interface: "eth0", Priority: prio, ProceedOn: proceedOn}}},
			Hook:   &bpfdv1.HookPosition{Hook: "xdp/ifindex=2/netns=1", Position: pos, Priority: prio, DispatcherMode: bpfdv1.DispatcherMode_DISPATCHER_MODE_LINKED},
		}
	}
	return []*bpfdv1.Program{
		xdp(5, "xdp_counter", 1, 20, bpfdv1.XdpAction_XDP_ACTION_PASS, bpfdv1.XdpAction_XDP_ACTION_DISPATCHER_RETURN),
		{
			Id: 6, Managed: true, Name: "tcx_counter", Type: bpfdv1.ProgramType_PROGRAM_TYPE_TCX,
			Attach: &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Tcx{Tcx: &bpfdv1.TcxAttach{Interface: "eth1", Netns: "/run/netns/blue", Direction: bpfdv1.Direction_DIRECTION_EGRESS, Priority: 500}}},
			Hook:   &bpfdv1.HookPosition{Hook: "tcx/egress/ifindex=3/netns=7", Priority: 500},
		},
		xdp(3, "xdp_verdict", 0, 10, bpfdv1.XdpAction_XDP_ACTION_PASS, bpfdv1.XdpAction_XDP_ACTION_DROP),
		{Id: 7, Managed: true, Name: "tracepoint_counter", Type: bpfdv1.ProgramType_PROGRAM_TYPE_TRACEPOINT},
		{Name: "other", Kernel: &bpfdv1.KernelInfo{ProgramId: 99}},
	}
}

func TestHookList(t *testing.T) {
	want := hookListJSON{APIVersion: jsonAPIVersion, Hooks: []chainJSON{
		{Hook: "tcx/egress/ifindex=3/netns=7", Type: "tcx", Interface: "eth1", Netns: "/run/netns/blue", Direction: "egress",
			Programs: []chainProgramJSON{{Position: 0, ID: 6, Name: "tcx_counter", Priority: 500}}},
		{Hook: "xdp/ifindex=2/netns=1", Type: "xdp", Interface: "eth0", DispatcherMode: "linked", Programs: []chainProgramJSON{
			{Position: 0, ID: 3, Name: "xdp_verdict", Priority: 10, ProceedOn: []string{"pass", "drop"}},
			{Position: 1, ID: 5, Name: "xdp_counter", Priority: 20, ProceedOn: []string{"pass", "dispatcher_return"}},
		}},
	}}
	got := newHookList(chainPrograms())
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("hooks (-want +got):\n%s", diff)
	}

	var b bytes.Buffer
	printHookTable(&b, got)
	wantTable := `HOOK                                   MODE    POS  ID  NAME         PRIO  PROCEED ON
tcx eth1 egress netns /run/netns/blue  -       0    6   tcx_counter  500   -
xdp eth0                               linked  0    3   xdp_verdict  10    pass,drop
                                               1    5   xdp_counter  20    pass,dispatcher_return
`
	if diff := cmp.Diff(wantTable, b.String()); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

func TestHookListEmpty(t *testing.T) {
	var b bytes.Buffer
	printHookTable(&b, newHookList(nil))
	if got, want := b.String(), "HOOK  MODE  POS  ID  NAME  PRIO  PROCEED ON\n"; got != want {
		t.Errorf("table %q, want %q", got, want)
	}
}
