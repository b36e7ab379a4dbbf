package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestMeasureAlternatesAndTakesMedians(t *testing.T) {
	var order []string
	side := func(name string) Side {
		return Side{Name: name, Run: func(context.Context) error { order = append(order, name); return nil }}
	}
	peer := side("peer")
	res := measure(context.Background(), Row{Name: "r", Ours: side("ours"), Peer: &peer}, 3)
	// warm-up, then runs 0..2: odd runs let the peer go first.
	want := []string{"ours", "peer", "ours", "peer", "peer", "ours", "ours", "peer"}
	if diff := cmp.Diff(want, order); diff != "" {
		t.Errorf("run order (-want +got):\n%s", diff)
	}
	if len(res.OursSamples) != 3 || len(res.PeerSamples) != 3 || res.Ratio == 0 {
		t.Errorf("result %+v: want 3 samples a side and a ratio", res)
	}
}

func TestMeasureRecordsWhatASideMeasures(t *testing.T) {
	side := Side{Name: "self-timed", Measure: func(context.Context) (time.Duration, error) { return 48 * time.Nanosecond, nil }}
	res := measure(context.Background(), Row{Name: "r", Ours: side}, 5)
	if res.OursMedian != 48*time.Nanosecond || len(res.OursSamples) != 5 {
		t.Errorf("result %+v: want 5 samples of 48ns", res)
	}
}

func TestMeasureReportsErrors(t *testing.T) {
	res := measure(context.Background(), Row{Name: "r", Ours: Side{Name: "ours", Run: func(context.Context) error { return errors.New("boom") }}}, 3)
	if res.Error != "ours: boom" {
		t.Errorf("error = %q", res.Error)
	}
}

func TestMeasureChecksEachRunUntimed(t *testing.T) {
	runs, checks := 0, 0
	side := Side{
		Name: "ours",
		Run:  func(context.Context) error { runs++; return nil },
		Check: func(context.Context) error {
			checks++
			time.Sleep(20 * time.Millisecond)
			return nil
		},
	}
	res := measure(context.Background(), Row{Name: "r", Ours: side}, 5)
	if runs != 6 || checks != 6 {
		t.Errorf("%d runs, %d checks: want 6 of each (a warm-up and 5)", runs, checks)
	}
	if res.OursMedian >= 20*time.Millisecond {
		t.Errorf("median %v includes the check's time", res.OursMedian)
	}

	side.Check = func(context.Context) error { return errors.New("file missing") }
	if res := measure(context.Background(), Row{Name: "r", Ours: side}, 5); res.Error != "ours: check: file missing" {
		t.Errorf("error = %q, want the check's", res.Error)
	}
}

func TestMedian(t *testing.T) {
	cases := map[string]struct {
		in   []time.Duration
		want time.Duration
	}{
		"empty": {nil, 0},
		"odd":   {[]time.Duration{5, 1, 3}, 3},
		"even":  {[]time.Duration{4, 1, 3, 2}, 2},
	}
	for name, tc := range cases {
		if got := median(tc.in); got != tc.want {
			t.Errorf("%s: median(%v) = %v, want %v", name, tc.in, got, tc.want)
		}
	}
}

func TestPrintTable(t *testing.T) {
	var buf bytes.Buffer
	printTable(&buf, []Result{
		{Row: "push 1 MiB", Ours: "bpfctl-image push", Peer: "oras push", OursMedian: 20 * time.Millisecond, PeerMedian: 40 * time.Millisecond, Ratio: 0.5},
		{Row: "list 1000", Ours: "bpfctl list", OursMedian: 1500 * time.Microsecond},
		{Row: "restart", Figures: []Figure{{Name: "peak RSS", Value: 41.5, Unit: "MiB"}}},
	})
	for _, want := range []string{"20.0ms", "oras push", "0.50", "1.5ms", "41.5 MiB"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
}
