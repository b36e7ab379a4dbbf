package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

var topCommand = &cli.Command{
	Name: "top",
	Usage: "show what each BPF program on the node costs, live on a terminal (one JSON sample when piped); " +
		"bpfd keeps BPF statistics on while it runs",
	Flags: []cli.Flag{
		&cli.DurationFlag{Name: "interval", Aliases: []string{"d"}, Value: time.Second, Usage: "time between samples (100ms to 1m)", EnvVars: []string{"BPFCTL_TOP_INTERVAL"}},
		&cli.StringFlag{Name: "sort", Value: "cpu", Usage: "order rows by cpu, runs, avg or name"},
		&cli.IntFlag{Name: "limit", Aliases: []string{"n"}, Usage: "show at most this many programs (default: what fits the terminal; all when piped)"},
		&cli.IntFlag{Name: "samples", Usage: "stop after this many samples (default: 1 when piped, until interrupted on a terminal)"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "table or json (default: table on a terminal, json when piped)", EnvVars: []string{"BPFCTL_OUTPUT"}},
	},
	Action: func(c *cli.Context) error {
		if c.NArg() != 0 {
			return cliutil.Usagef("top takes no arguments")
		}
		interval := c.Duration("interval")
		if interval < 100*time.Millisecond || interval > time.Minute {
			return cliutil.Usagef("--interval %s: want 100ms to 1m", interval)
		}
		order, ok := topOrders[c.String("sort")]
		if !ok {
			return cliutil.Usagef("--sort %q: want cpu, runs, avg or name", c.String("sort"))
		}
		tty := isTerminal(c.App.Writer)
		asJSON := !tty
		switch c.String("output") {
		case "":
		case "json":
			asJSON = true
		case "table", "text":
			asJSON = false
		default:
			return cliutil.Usagef("--output %q: want table or json", c.String("output"))
		}
		samples := c.Int("samples")
		if samples == 0 && !tty {
			samples = 1
		}
		limit := c.Int("limit")
		if limit < 0 || samples < 0 {
			return cliutil.Usagef("--limit and --samples take positive numbers")
		}

		conn, _, err := connect(c)
		if err != nil {
			return err
		}
		defer conn.Close()
		// The stream lasts as long as top runs: --timeout bounds each
		// sample's wait, not the whole.
		ctx, cancel := context.WithCancel(c.Context)
		defer cancel()
		stream, err := conn.Top(ctx, &bpfdv1.TopRequest{Interval: durationpb.New(interval)})
		if err != nil {
			return requestFailed("top", conn.socket, err)
		}
		for n := 0; samples == 0 || n < samples; n++ {
			sample, err := recvWithin(stream, interval+c.Duration("timeout"))
			if errors.Is(err, context.Canceled) || c.Context.Err() != nil {
				return nil // interrupted
			}
			if err != nil {
				return requestFailed("top", conn.socket, err)
			}
			progs := sortRuns(sample.GetPrograms(), order)
			if asJSON {
				if err := cliutil.WriteJSON(c.App.Writer, newTopSample(sample, progs, limit)); err != nil {
					return err
				}
				if err := flush(c.App.Writer); err != nil {
					return err
				}
				continue
			}
			rows := limit
			if rows == 0 && tty {
				rows = terminalRows(c.App.Writer) - 4
			}
			if tty {
				fmt.Fprint(c.App.Writer, "\x1b[H\x1b[2J") // home, clear
			}
			printTop(c.App.Writer, sample, progs, rows)
			if err := flush(c.App.Writer); err != nil {
				return err
			}
		}
		return nil
	},
}

// recvWithin receives a sample, giving up after d.
func recvWithin(stream bpfdv1.Bpfd_TopClient, d time.Duration) (*bpfdv1.TopSample, error) {
	type result struct {
		s   *bpfdv1.TopSample
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := stream.Recv()
		ch <- result{s, err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-time.After(d):
		return nil, fmt.Errorf("no sample within %s: %w", d, context.DeadlineExceeded)
	}
}

// topOrders are the orders of --sort: most first, then by name.
var topOrders = map[string]func(a, b *bpfdv1.ProgramRuns) int{
	"cpu": func(a, b *bpfdv1.ProgramRuns) int {
		return cmp.Compare(b.GetTime().AsDuration(), a.GetTime().AsDuration())
	},
	"runs": func(a, b *bpfdv1.ProgramRuns) int { return cmp.Compare(b.GetRuns(), a.GetRuns()) },
	"avg":  func(a, b *bpfdv1.ProgramRuns) int { return cmp.Compare(avgNano(b), avgNano(a)) },
	"name": func(a, b *bpfdv1.ProgramRuns) int { return cmp.Compare(a.GetName(), b.GetName()) },
}

func sortRuns(ps []*bpfdv1.ProgramRuns, order func(a, b *bpfdv1.ProgramRuns) int) []*bpfdv1.ProgramRuns {
	ps = slices.Clone(ps)
	slices.SortStableFunc(ps, func(a, b *bpfdv1.ProgramRuns) int {
		if c := order(a, b); c != 0 {
			return c
		}
		if c := cmp.Compare(a.GetName(), b.GetName()); c != 0 {
			return c
		}
		return cmp.Compare(a.GetKernelId(), b.GetKernelId())
	})
	return ps
}

// avgNano is the average run's time in the interval, in nanoseconds.
func avgNano(p *bpfdv1.ProgramRuns) float64 {
	if p.GetRuns() == 0 {
		return 0
	}
	return float64(p.GetTime().AsDuration().Nanoseconds()) / float64(p.GetRuns())
}

// printTop prints a sample as a table of at most rows programs (0: all).
func printTop(w io.Writer, s *bpfdv1.TopSample, progs []*bpfdv1.ProgramRuns, rows int) {
	var total time.Duration
	for _, p := range progs {
		total += p.GetTime().AsDuration()
	}
	interval := s.GetInterval().AsDuration()
	busy := 0.0
	if interval > 0 {
		busy = float64(total) / float64(interval) * 100
	}
	fmt.Fprintf(w, "bpfctl top - %s  %d programs  BPF %.2f%% of one CPU (%d CPUs)  every %s\n\n",
		s.GetAt().AsTime().Local().Format("15:04:05"), len(progs), busy, s.GetCpus(), interval.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ID\tKERNEL ID\tNAME\tTYPE\tRUNS/S\tAVG NS\tCPU%\tTOTAL RUNS\tHOOK\t")
	for i, p := range progs {
		if rows > 0 && i >= rows {
			break
		}
		id := "-"
		if p.GetId() != 0 {
			id = strconv.FormatUint(p.GetId(), 10)
		}
		typ := p.GetKind()
		if typ == "" {
			typ = "(" + p.GetKernelType() + ")"
		}
		perSecond := 0.0
		if interval > 0 {
			perSecond = float64(p.GetRuns()) / interval.Seconds()
		}
		hook := orDash(p.GetHook())
		if p.GetAccounted() {
			hook += " *"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%.0f\t%.0f\t%.2f\t%d\t%s\t\n", id, p.GetKernelId(), orDash(p.GetName()), typ,
			perSecond, avgNano(p), p.GetCpuPercent(), p.GetRunCount(), hook)
	}
	tw.Flush()
	if s.GetOmitted() > 0 {
		fmt.Fprintf(w, "%d programs beyond bpfd's bound left out\n", s.GetOmitted())
	}
}

// flush writes out what w (bpfctl's buffered stdout) holds, so that each
// sample shows when it comes.
func flush(w io.Writer) error {
	if o, ok := w.(*output); ok {
		if err := o.Flush(); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	}
	return nil
}

// file returns the file w writes to, looking through bpfctl's buffered
// stdout.
func file(w io.Writer) (*os.File, bool) {
	if o, ok := w.(*output); ok {
		w = o.dst
	}
	f, ok := w.(*os.File)
	return f, ok
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := file(w)
	return ok && term.IsTerminal(int(f.Fd()))
}

// terminalRows returns the terminal's height, 24 if unknown.
func terminalRows(w io.Writer) int {
	if f, ok := file(w); ok {
		if _, h, err := term.GetSize(int(f.Fd())); err == nil && h > 5 {
			return h
		}
	}
	return 24
}

// topSampleJSON is what top prints with --output json (one per sample).
type topSampleJSON struct {
	APIVersion string    `json:"apiVersion"`
	At         time.Time `json:"at"`
	// IntervalNano is the time the sample covers.
	IntervalNano int64             `json:"intervalNs"`
	CPUs         uint32            `json:"cpus"`
	Programs     []programRunsJSON `json:"programs"`
	// Omitted counts programs beyond bpfd's bound, or --limit.
	Omitted uint32 `json:"omitted,omitempty"`
}

// programRunsJSON is one program's runs: cumulative (RunCount, RunTimeNs)
// and in the sample's interval (Runs, TimeNs, AvgNs, CPUPercent: percent
// of one CPU).
type programRunsJSON struct {
	// ID is bpfd's id; 0 for programs bpfd did not load.
	ID         uint64 `json:"id,omitempty"`
	KernelID   uint32 `json:"kernelId"`
	Name       string `json:"name,omitempty"`
	Type       string `json:"type,omitempty"`
	KernelType string `json:"kernelType,omitempty"`
	Hook       string `json:"hook,omitempty"`
	// Accounted says the program's chain counted its runs (it runs in a
	// dispatcher's chain); otherwise the kernel did.
	Accounted   bool    `json:"accounted,omitempty"`
	RunCount    uint64  `json:"runCount"`
	RunTimeNano int64   `json:"runTimeNs"`
	Runs        uint64  `json:"runs"`
	TimeNano    int64   `json:"timeNs"`
	AvgNano     float64 `json:"avgNs"`
	CPUPercent  float64 `json:"cpuPercent"`
}

func newTopSample(s *bpfdv1.TopSample, progs []*bpfdv1.ProgramRuns, limit int) topSampleJSON {
	out := topSampleJSON{
		APIVersion: jsonAPIVersion, At: s.GetAt().AsTime(), IntervalNano: s.GetInterval().AsDuration().Nanoseconds(),
		CPUs: s.GetCpus(), Programs: []programRunsJSON{}, Omitted: s.GetOmitted(),
	}
	for i, p := range progs {
		if limit > 0 && i >= limit {
			out.Omitted += uint32(len(progs) - limit)
			break
		}
		out.Programs = append(out.Programs, programRunsJSON{
			ID: p.GetId(), KernelID: p.GetKernelId(), Name: p.GetName(), Type: p.GetKind(), KernelType: p.GetKernelType(),
			Hook: p.GetHook(), Accounted: p.GetAccounted(), RunCount: p.GetRunCount(), RunTimeNano: p.GetRunTime().AsDuration().Nanoseconds(),
			Runs: p.GetRuns(), TimeNano: p.GetTime().AsDuration().Nanoseconds(), AvgNano: avgNano(p), CPUPercent: p.GetCpuPercent(),
		})
	}
	return out
}
