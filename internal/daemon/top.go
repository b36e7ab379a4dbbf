package daemon

import (
	"cmp"
	"context"
	"fmt"
	goruntime "runtime"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bpfd-dev/bpfd/pkg/runtime"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// Top's bounds: the interval between samples, and the programs one sample
// reports (the most expensive first).
const (
	defaultTopInterval = time.Second
	minTopInterval     = 100 * time.Millisecond
	maxTopInterval     = time.Minute
	maxTopPrograms     = 10000
)

// topInterval returns the interval a Top request asks for.
func topInterval(in *pb.TopRequest) (time.Duration, error) {
	if in.GetInterval() == nil {
		return defaultTopInterval, nil
	}
	if err := in.GetInterval().CheckValid(); err != nil {
		return 0, invalid("interval", "%v", err)
	}
	d := in.GetInterval().AsDuration()
	if d == 0 {
		return defaultTopInterval, nil
	}
	if d < minTopInterval || d > maxTopInterval {
		return 0, invalid("interval", "%s: want %s to %s", d, minTopInterval, maxTopInterval)
	}
	return d, nil
}

// statsKey identifies a program across samples: bpfd's id, or the kernel's
// for the others.
func statsKey(s runtime.ProgramStats) string {
	if s.ID != 0 {
		return fmt.Sprintf("b%d", s.ID)
	}
	return fmt.Sprintf("k%d", s.KernelID)
}

// topSample returns what happened between prev and cur, elapsed apart,
// sampled at: each program's runs and time in the interval (a counter that
// went back, a chain rebuilt by a restarted bpfd, counts from zero), most
// time first, at most maxTopPrograms of them.
func topSample(prev, cur []runtime.ProgramStats, elapsed time.Duration, at time.Time) *pb.TopSample {
	before := make(map[string]runtime.ProgramStats, len(prev))
	for _, s := range prev {
		before[statsKey(s)] = s
	}
	out := &pb.TopSample{At: timestamppb.New(at), Interval: durationpb.New(elapsed), Cpus: uint32(goruntime.NumCPU())}
	for _, s := range cur {
		runs, t := s.RunCount, s.RunTime
		if b, ok := before[statsKey(s)]; ok && b.RunCount <= s.RunCount && b.RunTime <= s.RunTime {
			runs, t = s.RunCount-b.RunCount, s.RunTime-b.RunTime
		}
		p := &pb.ProgramRuns{
			Id: uint64(s.ID), KernelId: s.KernelID, Name: s.Name, Kind: string(s.Kind), KernelType: s.KernelType,
			Hook: s.Hook, Accounted: s.Accounted, RunCount: s.RunCount, RunTime: durationpb.New(s.RunTime),
			Runs: runs, Time: durationpb.New(t),
		}
		if elapsed > 0 {
			p.CpuPercent = float64(t) / float64(elapsed) * 100
		}
		out.Programs = append(out.Programs, p)
	}
	slices.SortStableFunc(out.Programs, func(a, b *pb.ProgramRuns) int {
		if c := cmp.Compare(b.GetTime().AsDuration(), a.GetTime().AsDuration()); c != 0 {
			return c
		}
		if c := cmp.Compare(a.GetId(), b.GetId()); c != 0 {
			return c
		}
		return cmp.Compare(a.GetKernelId(), b.GetKernelId())
	})
	if n := len(out.Programs); n > maxTopPrograms {
		out.Omitted = uint32(n - maxTopPrograms)
		out.Programs = out.Programs[:maxTopPrograms]
	}
	return out
}

// Top holds BPF statistics on and sends a sample every interval until the
// client goes away.
func (s *server) Top(in *pb.TopRequest, stream pb.Bpfd_TopServer) error {
	interval, err := topInterval(in)
	if err != nil {
		return toStatus(err)
	}
	ctx := stream.Context()
	release, err := s.manager.HoldStats(ctx)
	if err != nil {
		return toStatus(err)
	}
	defer release()
	prev, err := s.stats(ctx)
	if err != nil {
		return toStatus(err)
	}
	last := time.Now()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		cur, err := s.stats(ctx)
		if err != nil {
			return toStatus(err)
		}
		now := time.Now()
		if err := stream.Send(topSample(prev, cur, now.Sub(last), now)); err != nil {
			return err
		}
		prev, last = cur, now
	}
}

// stats returns every program's runs, without bpfd's own iterator.
func (s *server) stats(ctx context.Context) ([]runtime.ProgramStats, error) {
	st, err := s.manager.Stats(ctx)
	if err != nil {
		return nil, err
	}
	if own := s.ownProgram(); own != 0 {
		st = slices.DeleteFunc(st, func(p runtime.ProgramStats) bool { return p.ID == 0 && p.KernelID == own })
	}
	return st, nil
}
