package dispatcher_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

func TestParseProceedOn(t *testing.T) {
	cases := map[string]struct {
		kind    progtype.Kind
		names   []string
		want    dispatcher.ProceedOn
		wantErr error
	}{
		"xdp pass":                {kind: progtype.XDP, names: []string{"pass"}, want: 1 << 2},
		"xdp every action":        {kind: progtype.XDP, names: []string{"aborted", "drop", "pass", "tx", "redirect", "dispatcher_return"}, want: 0x1f | 1<<31},
		"xdp ignores case":        {kind: progtype.XDP, names: []string{" PASS", "Drop "}, want: 1<<2 | 1<<1},
		"xdp repeated name":       {kind: progtype.XDP, names: []string{"tx", "tx"}, want: 1 << 3},
		"none is the empty set":   {kind: progtype.XDP, names: nil, want: 0},
		"tc unspec is bit 0":      {kind: progtype.TC, names: []string{"unspec"}, want: 1},
		"tc ok and trap":          {kind: progtype.TC, names: []string{"ok", "trap"}, want: 1<<1 | 1<<9},
		"tc dispatcher_return":    {kind: progtype.TC, names: []string{"dispatcher_return"}, want: 1 << 31},
		"xdp has no shot":         {kind: progtype.XDP, names: []string{"shot"}, wantErr: dispatcher.ErrInvalid},
		"tc has no pass":          {kind: progtype.TC, names: []string{"ok", "pass"}, wantErr: dispatcher.ErrInvalid},
		"empty name":              {kind: progtype.TC, names: []string{""}, wantErr: dispatcher.ErrInvalid},
		"tcx hooks have no chain": {kind: progtype.TCX, names: []string{"ok"}, wantErr: dispatcher.ErrInvalid},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := dispatcher.ParseProceedOn(tc.kind, tc.names)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ParseProceedOn(%s, %q) error = %v, want %v", tc.kind, tc.names, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("ParseProceedOn(%s, %q) = %#x, want %#x", tc.kind, tc.names, uint32(got), uint32(tc.want))
			}
		})
	}
}

func TestProceedOnRoundTrip(t *testing.T) {
	for _, k := range []progtype.Kind{progtype.XDP, progtype.TC} {
		names := dispatcher.ActionNames(k)
		all, err := dispatcher.ParseProceedOn(k, names)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(names, all.Names(k)); diff != "" {
			t.Errorf("%s: Names of every action (-want +got):\n%s", k, diff)
		}
		for _, n := range names {
			p, _ := dispatcher.ParseProceedOn(k, []string{n})
			if diff := cmp.Diff([]string{n}, p.Names(k)); diff != "" {
				t.Errorf("%s %s: Names (-want +got):\n%s", k, n, diff)
			}
		}
	}
}

func TestDefaultProceedOn(t *testing.T) {
	cases := map[progtype.Kind][]string{
		progtype.XDP: {"pass", "dispatcher_return"},
		progtype.TC:  {"ok", "pipe", "dispatcher_return"},
	}
	for k, want := range cases {
		if diff := cmp.Diff(want, dispatcher.DefaultProceedOn(k).Names(k)); diff != "" {
			t.Errorf("DefaultProceedOn(%s) (-want +got):\n%s", k, diff)
		}
	}
}

func TestProceeds(t *testing.T) {
	cases := map[string]struct {
		kind progtype.Kind
		set  []string
		ret  int32
		want bool
	}{
		"xdp pass in set":         {kind: progtype.XDP, set: []string{"pass"}, ret: 2, want: true},
		"xdp drop not in set":     {kind: progtype.XDP, set: []string{"pass"}, ret: 1},
		"xdp stub return":         {kind: progtype.XDP, set: []string{"dispatcher_return"}, ret: 31, want: true},
		"xdp out of range":        {kind: progtype.XDP, set: dispatcher.ActionNames(progtype.XDP), ret: 32},
		"xdp negative":            {kind: progtype.XDP, set: dispatcher.ActionNames(progtype.XDP), ret: -1},
		"tc unspec in set":        {kind: progtype.TC, set: []string{"unspec"}, ret: -1, want: true},
		"tc ok not in set":        {kind: progtype.TC, set: []string{"unspec"}, ret: 0},
		"tc stub return":          {kind: progtype.TC, set: []string{"dispatcher_return"}, ret: 30, want: true},
		"tc below unspec":         {kind: progtype.TC, set: dispatcher.ActionNames(progtype.TC), ret: -2},
		"tc out of range":         {kind: progtype.TC, set: dispatcher.ActionNames(progtype.TC), ret: 31},
		"tc redirect in defaults": {kind: progtype.TC, set: []string{"ok", "pipe"}, ret: 7},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := dispatcher.ParseProceedOn(tc.kind, tc.set)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Proceeds(tc.kind, tc.ret); got != tc.want {
				t.Errorf("%v.Proceeds(%s, %d) = %v, want %v", tc.set, tc.kind, tc.ret, got, tc.want)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	cases := map[string]struct {
		in      string
		want    dispatcher.Mode
		wantErr error
	}{
		"empty is auto":  {in: "", want: dispatcher.ModeAuto},
		"auto":           {in: "auto", want: dispatcher.ModeAuto},
		"freplace":       {in: "freplace", want: dispatcher.ModeFreplace},
		"linked, spaced": {in: " Linked ", want: dispatcher.ModeLinked},
		"unknown":        {in: "tailcall", wantErr: dispatcher.ErrInvalid},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := dispatcher.ParseMode(tc.in)
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Errorf("ParseMode(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestCheckPriority(t *testing.T) {
	for p, ok := range map[int]bool{0: false, 1: true, 500: true, 1000: true, 1001: false, -5: false} {
		if err := dispatcher.CheckPriority(p); (err == nil) != ok || (err != nil && !errors.Is(err, dispatcher.ErrInvalid)) {
			t.Errorf("CheckPriority(%d) = %v", p, err)
		}
	}
}

// TestRankOrder sorts programs as a hook runs them: by priority, then
// attach time, then id; removing one keeps the others' order.
func TestRankOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ranks := []dispatcher.Rank{
		{Priority: 50, Attached: t0.Add(time.Second), ID: 4},
		{Priority: 10, Attached: t0.Add(time.Hour), ID: 9},
		{Priority: 50, Attached: t0, ID: 7},
		{Priority: 50, Attached: t0, ID: 2},
		{Priority: 1000, Attached: t0, ID: 1},
	}
	sorted := slices.SortedFunc(slices.Values(ranks), dispatcher.Rank.Compare)
	if diff := cmp.Diff([]uint64{9, 2, 7, 4, 1}, rankIDs(sorted)); diff != "" {
		t.Fatalf("order (-want +got):\n%s", diff)
	}
	without := slices.DeleteFunc(slices.Clone(ranks), func(r dispatcher.Rank) bool { return r.ID == 7 })
	resorted := slices.SortedFunc(slices.Values(without), dispatcher.Rank.Compare)
	if diff := cmp.Diff([]uint64{9, 2, 4, 1}, rankIDs(resorted)); diff != "" {
		t.Fatalf("order without 7 (-want +got):\n%s", diff)
	}
}

func rankIDs(rs []dispatcher.Rank) []uint64 {
	var out []uint64
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func ExampleParseProceedOn() {
	p, err := dispatcher.ParseProceedOn(progtype.XDP, []string{"pass", "drop"})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%#x %v\n", uint32(p), p.Names(progtype.XDP))
	fmt.Println(p.Proceeds(progtype.XDP, 1), p.Proceeds(progtype.XDP, 3))

	_, err = dispatcher.ParseProceedOn(progtype.TC, []string{"pass"})
	fmt.Println(err)
	// Output:
	// 0x6 [drop pass]
	// true false
	// proceed-on "pass": not a tc action (want unspec, ok, reclassify, shot, pipe, stolen, queued, repeat, redirect, trap, dispatcher_return): invalid
}

func ExampleDefaultProceedOn() {
	fmt.Println(dispatcher.DefaultProceedOn(progtype.XDP).Names(progtype.XDP))
	fmt.Println(dispatcher.DefaultProceedOn(progtype.TC).Names(progtype.TC))
	// Output:
	// [pass dispatcher_return]
	// [ok pipe dispatcher_return]
}
