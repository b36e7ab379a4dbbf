package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// topSamples is how many Top samples the CPU figure averages over.
const topSamples = 20

// topRows are the rows of the node's inventory and of bpfctl top with n
// programs loaded: `bpfctl top` printing one sample when piped (one
// interval of 100ms, statistics held, two readings of every program's
// counters), bpfd's CPU time per sample of a Top call left open, and
// `bpfctl inventory -o json` and `bpfctl list --all` (both scanning every
// process's descriptors for holders).
func (d *listDaemon) topRows(n int, prepare func(context.Context) error) []Row {
	programs := fmt.Sprintf("%s loaded", plural(n, "program"))
	return []Row{
		{Name: "bpfd: bpfctl top (one sample, 100ms interval), " + programs, Ours: Side{
			Name: "bpfctl top -d 100ms (piped)", Prepare: prepare,
			Run: func(ctx context.Context) error {
				out, err := d.bpfctl(ctx, "top", "--interval", "100ms")
				if err != nil {
					return err
				}
				var sample struct{ Programs []json.RawMessage }
				if err := json.Unmarshal(out, &sample); err != nil {
					return fmt.Errorf("bpfctl top printed %.200q: %w", out, err)
				}
				if len(sample.Programs) < n {
					return fmt.Errorf("bpfctl top showed %d programs, want at least %d", len(sample.Programs), n)
				}
				return nil
			},
		}},
		{Name: "bpfd: CPU time per Top sample, " + programs, Figures: func(ctx context.Context) ([]Figure, error) {
			if err := prepare(ctx); err != nil {
				return nil, err
			}
			return d.topCPU(ctx, n)
		}},
		{Name: "bpfd: bpfctl inventory -o json, " + programs, Ours: Side{
			Name: "bpfctl inventory -o json", Prepare: prepare, Run: d.inventory(n, "inventory", "-o", "json"),
		}},
		{Name: "bpfd: bpfctl list --all (with holders), " + programs, Ours: Side{
			Name: "bpfctl list --all", Prepare: prepare, Run: d.inventory(n, "list", "--all"),
		}},
	}
}

// inventory runs bpfctl with args and checks that it showed n programs.
func (d *listDaemon) inventory(n int, args ...string) func(context.Context) error {
	return func(ctx context.Context) error {
		out, err := d.bpfctl(ctx, args...)
		if err != nil {
			return err
		}
		if got := strings.Count(string(out), "tracepoint_cou"); got < n {
			return fmt.Errorf("bpfctl %s showed %d programs, want %d", strings.Join(args, " "), got, n)
		}
		return nil
	}
}

// topCPU opens a Top call at its fastest interval and reports the CPU time
// bpfd spends per sample, over topSamples samples, and the sample's size.
func (d *listDaemon) topCPU(ctx context.Context, n int) ([]Figure, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := d.client.Top(ctx, &pb.TopRequest{Interval: durationpb.New(100 * time.Millisecond)})
	if err != nil {
		return nil, err
	}
	if _, err := stream.Recv(); err != nil { // statistics on, first reading done
		return nil, err
	}
	start, err := cpuTime(d.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	began := time.Now()
	programs := 0
	for range topSamples {
		s, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		programs = len(s.GetPrograms())
	}
	elapsed := time.Since(began)
	end, err := cpuTime(d.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	if programs < n {
		return nil, fmt.Errorf("Top sampled %d programs, want at least %d", programs, n)
	}
	perSample := (end - start) / topSamples
	return []Figure{
		{Name: "bpfd CPU per sample", Value: float64(perSample.Microseconds()) / 1000, Unit: "ms"},
		{Name: "bpfd CPU at a 100ms interval", Value: float64(end-start) / float64(elapsed) * 100, Unit: "% of one CPU"},
		{Name: "programs per sample", Value: float64(programs), Unit: "programs"},
	}, nil
}

// cpuTime returns the user and system time process pid has used
// (/proc/PID/stat, fields 14 and 15, in clock ticks of 1/100 s).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}
