package dispatcher

import (
	"fmt"
	"math/bits"
	"strings"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// ProceedOn is the set of return values after which a program's successor on
// the hook runs; any other return value is the hook's result. It is a bit
// mask, as the dispatchers test it:
//   - XDP: bit n is verdict n (aborted 0, drop 1, pass 2, tx 3, redirect 4);
//   - TC: bit a+1 is action a (unspec -1, ok 0, reclassify 1, shot 2, pipe 3,
//     stolen 4, queued 5, repeat 6, redirect 7, trap 8);
//   - both: bit 31 is dispatcher_return, what an empty freplace slot returns.
//
// The XDP layout is libxdp's chain_call_actions.
type ProceedOn uint32

// DispatcherReturn is the action name of bit 31.
const DispatcherReturn = "dispatcher_return"

const dispatcherReturnBit = 31

// actions lists each kind's action names by bit.
var actions = map[progtype.Kind][]string{
	progtype.XDP: {"aborted", "drop", "pass", "tx", "redirect"},
	progtype.TC:  {"unspec", "ok", "reclassify", "shot", "pipe", "stolen", "queued", "repeat", "redirect", "trap"},
}

// Return values the chain itself gives.
const (
	xdpPass = 2  // XDP_PASS: every program proceeded
	tcOK    = 0  // TC_ACT_OK: every program proceeded
	xdpStub = 31 // what an unreplaced stub of xdp_dispatcher returns
	tcStub  = 30 // and of tc_dispatcher
)

func checkKind(k progtype.Kind) error {
	if _, ok := actions[k]; !ok {
		return fmt.Errorf("program kind %q: dispatchers serve xdp and tc hooks: %w", k, ErrInvalid)
	}
	return nil
}

// ActionNames returns the names ParseProceedOn accepts for hooks of kind k,
// in bit order, ending with dispatcher_return; nil for other kinds.
func ActionNames(k progtype.Kind) []string {
	names, ok := actions[k]
	if !ok {
		return nil
	}
	return append(append([]string(nil), names...), DispatcherReturn)
}

// DefaultProceedOn returns the set a program gets when none is asked for:
// pass and dispatcher_return on XDP; ok, pipe and dispatcher_return on TC.
func DefaultProceedOn(k progtype.Kind) ProceedOn {
	switch k {
	case progtype.XDP:
		return 1<<2 | 1<<dispatcherReturnBit
	case progtype.TC:
		return 1<<(0+1) | 1<<(3+1) | 1<<dispatcherReturnBit
	}
	return 0
}

// ParseProceedOn returns the set of the named actions of kind k, matched
// without regard to case. No names is the empty set: the chain stops after
// the program whatever it returns.
func ParseProceedOn(k progtype.Kind, names []string) (ProceedOn, error) {
	if err := checkKind(k); err != nil {
		return 0, err
	}
	var p ProceedOn
	for _, name := range names {
		n := strings.ToLower(strings.TrimSpace(name))
		bit := -1
		for i, a := range actions[k] {
			if a == n {
				bit = i
			}
		}
		if n == DispatcherReturn {
			bit = dispatcherReturnBit
		}
		if bit < 0 {
			return 0, fmt.Errorf("proceed-on %q: not a %s action (want %s): %w",
				name, k, strings.Join(ActionNames(k), ", "), ErrInvalid)
		}
		p |= 1 << bit
	}
	return p, nil
}

// Names returns the names of the actions in p for hooks of kind k, in bit
// order.
func (p ProceedOn) Names(k progtype.Kind) []string {
	names := []string{}
	for q := uint32(p); q != 0; q &= q - 1 {
		bit := bits.TrailingZeros32(q)
		switch {
		case bit == dispatcherReturnBit:
			names = append(names, DispatcherReturn)
		case bit < len(actions[k]):
			names = append(names, actions[k][bit])
		default:
			names = append(names, fmt.Sprintf("bit%d", bit))
		}
	}
	return names
}

// check reports bits that name no action of kind k.
func (p ProceedOn) check(k progtype.Kind) error {
	valid := ProceedOn(1)<<len(actions[k]) - 1 | 1<<dispatcherReturnBit
	if extra := p &^ valid; extra != 0 {
		return fmt.Errorf("proceed-on %#x: bits %#x name no %s action: %w", uint32(p), uint32(extra), k, ErrInvalid)
	}
	return nil
}

// Proceeds reports whether a program of kind k returning ret lets the next
// program run under p.
func (p ProceedOn) Proceeds(k progtype.Kind, ret int32) bool {
	bit := uint32(ret)
	if k == progtype.TC {
		bit = uint32(ret + 1)
	}
	return bit <= 31 && uint32(p)&(1<<bit) != 0
}
