package bpfdv1

import (
	"fmt"
	"testing"
)

func TestNamesRoundTrip(t *testing.T) {
	for v := range ProgramType_name {
		if v == 0 {
			continue
		}
		pt := ProgramType(v)
		got, err := ParseProgramType(pt.Name())
		if err != nil || got != pt {
			t.Errorf("ParseProgramType(%q) = %v, %v; want %v", pt.Name(), got, err, pt)
		}
	}
	for v := range TcAction_name {
		if v == 0 {
			continue
		}
		a := TcAction(v)
		if got, err := ParseTcAction(a.Name()); err != nil || got != a {
			t.Errorf("ParseTcAction(%q) = %v, %v", a.Name(), got, err)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, s := range []string{"", "unspecified", "socket"} {
		if _, err := ParseProgramType(s); err == nil {
			t.Errorf("ParseProgramType(%q) accepted", s)
		}
	}
}

func ExampleParseXdpAction() {
	a, _ := ParseXdpAction("DISPATCHER_RETURN")
	fmt.Println(a, a.Name())
	_, err := ParseXdpAction("maybe")
	fmt.Println(err)
	// Output:
	// XDP_ACTION_DISPATCHER_RETURN dispatcher_return
	// unknown XDP action "maybe" (want one of aborted, drop, pass, tx, redirect, dispatcher_return)
}

func TestLinkAttachmentSummary(t *testing.T) {
	cases := map[string]struct {
		in   *LinkAttachment
		want string
	}{
		"nil":         {nil, ""},
		"tcx":         {&LinkAttachment{Hook: "tcx", Ifindex: 4, Interface: "eth0", Direction: "ingress", AttachType: "TCXIngress"}, "tcx eth0 ingress"},
		"xdp no name": {&LinkAttachment{Hook: "xdp", Ifindex: 7}, "xdp ifindex 7"},
		"cgroup":      {&LinkAttachment{Hook: "cgroup", CgroupId: 9, Cgroup: "/kubepods.slice", AttachType: "CGroupInetEgress"}, "cgroup /kubepods.slice CGroupInetEgress"},
		"kprobe":      {&LinkAttachment{Hook: "kprobe", Function: "do_unlinkat", Offset: 16}, "kprobe do_unlinkat +0x10"},
		"freplace":    {&LinkAttachment{Hook: "tracing", AttachType: "Extension", Function: "decide", TargetProgramId: 12}, "tracing prog 12 decide Extension"},
		"uprobe":      {&LinkAttachment{Hook: "uprobe", File: "/usr/bin/bash", Offset: 0x1234}, "uprobe /usr/bin/bash +0x1234"},
		"tracepoint":  {&LinkAttachment{Hook: "tracepoint", Tracepoint: "sys_enter_openat"}, "tracepoint sys_enter_openat"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := tc.in.Summary(); got != tc.want {
				t.Errorf("Summary() = %q, want %q", got, tc.want)
			}
		})
	}
}
