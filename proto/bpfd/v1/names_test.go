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
