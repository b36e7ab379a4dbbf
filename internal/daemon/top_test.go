package daemon

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

func TestTopSample(t *testing.T) {
	prev := []runtime.ProgramStats{
		{ID: 1, KernelID: 50, Name: "xdp_verdict", Kind: progtype.XDP, Hook: "xdp/ifindex=2", Accounted: true, RunCount: 100, RunTime: 10 * time.Microsecond},
		{KernelID: 60, Name: "other", KernelType: "Kprobe", RunCount: 5, RunTime: time.Microsecond},
		{KernelID: 70, Name: "reset", KernelType: "XDP", RunCount: 1000, RunTime: time.Millisecond},
		{KernelID: 80, Name: "gone", KernelType: "XDP", RunCount: 1},
	}
	cur := []runtime.ProgramStats{
		{ID: 1, KernelID: 51, Name: "xdp_verdict", Kind: progtype.XDP, Hook: "xdp/ifindex=2", Accounted: true, RunCount: 300, RunTime: 30 * time.Microsecond},
		{KernelID: 60, Name: "other", KernelType: "Kprobe", RunCount: 5, RunTime: time.Microsecond},
		{KernelID: 70, Name: "reset", KernelType: "XDP", RunCount: 10, RunTime: 50 * time.Microsecond},
		{KernelID: 90, Name: "new", KernelType: "SchedCLS", RunCount: 4, RunTime: 2 * time.Microsecond},
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	got := topSample(prev, cur, 100*time.Millisecond, at)
	type row struct {
		ID       uint64
		KernelID uint32
		Runs     uint64
		Time     time.Duration
		CPU      float64
	}
	var rows []row
	for _, p := range got.GetPrograms() {
		rows = append(rows, row{p.GetId(), p.GetKernelId(), p.GetRuns(), p.GetTime().AsDuration(), p.GetCpuPercent()})
	}
	want := []row{
		// A counter that went back counts from zero.
		{0, 70, 10, 50 * time.Microsecond, 0.05},
		// bpfd's program keeps its id when its chain is rebuilt.
		{1, 51, 200, 20 * time.Microsecond, 0.02},
		{0, 90, 4, 2 * time.Microsecond, 0.002},
		{0, 60, 0, 0, 0},
	}
	if diff := cmp.Diff(want, rows, cmp.Comparer(func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 })); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if p := got.GetPrograms()[1]; p.GetName() != "xdp_verdict" || p.GetKind() != "xdp" || !p.GetAccounted() || p.GetHook() != "xdp/ifindex=2" || p.GetRunCount() != 300 {
		t.Errorf("bpfd's program: %v", p)
	}
	if got.GetInterval().AsDuration() != 100*time.Millisecond || !got.GetAt().AsTime().Equal(at) || got.GetCpus() == 0 {
		t.Errorf("sample header: %v %v %d", got.GetInterval(), got.GetAt(), got.GetCpus())
	}
}

func TestTopSampleBounded(t *testing.T) {
	var cur []runtime.ProgramStats
	for i := range maxTopPrograms + 3 {
		cur = append(cur, runtime.ProgramStats{KernelID: uint32(i + 1), RunCount: uint64(i), RunTime: time.Duration(i)})
	}
	got := topSample(nil, cur, time.Second, time.Now())
	if len(got.GetPrograms()) != maxTopPrograms || got.GetOmitted() != 3 || got.GetPrograms()[0].GetKernelId() != maxTopPrograms+3 {
		t.Errorf("%d programs, %d omitted, first %d; want %d, 3, the costliest", len(got.GetPrograms()), got.GetOmitted(), got.GetPrograms()[0].GetKernelId(), maxTopPrograms)
	}
}

func TestTopInterval(t *testing.T) {
	cases := map[string]struct {
		in      *durationpb.Duration
		want    time.Duration
		invalid bool
	}{
		"default":   {nil, time.Second, false},
		"zero":      {durationpb.New(0), time.Second, false},
		"fastest":   {durationpb.New(100 * time.Millisecond), 100 * time.Millisecond, false},
		"slowest":   {durationpb.New(time.Minute), time.Minute, false},
		"too fast":  {durationpb.New(time.Millisecond), 0, true},
		"too slow":  {durationpb.New(time.Hour), 0, true},
		"negative":  {durationpb.New(-time.Second), 0, true},
		"malformed": {&durationpb.Duration{Seconds: 1, Nanos: -5}, 0, true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := topInterval(&pb.TopRequest{Interval: tc.in})
			if tc.invalid != errors.Is(err, runtime.ErrInvalid) || got != tc.want {
				t.Errorf("topInterval = %v, %v; want %v, invalid %v", got, err, tc.want, tc.invalid)
			}
		})
	}
}
