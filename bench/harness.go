package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// A Side is one way of doing a row's operation.
type Side struct {
	// Name says what runs, e.g. "bpfctl-image push" or "oras push".
	Name string
	// Prepare, if set, runs untimed before each Run (e.g. to unload what
	// the previous run loaded, or clear a cache).
	Prepare func(ctx context.Context) error
	// Run is the timed operation.
	Run func(ctx context.Context) error
	// Measure, if set, replaces Run and the harness's clock: it does the
	// operation and returns the time to record, for operations that time
	// themselves better than the wall clock can (BPF_PROG_TEST_RUN reports
	// the time its runs took without the time it was scheduled out).
	Measure func(ctx context.Context) (time.Duration, error)
	// Check, if set, runs untimed after each run and fails the row when
	// the run did not do what it claims (e.g. a pull left a file out), so
	// that no side is timed doing less than the other.
	Check func(ctx context.Context) error
}

// A Row compares bpfd's way of doing something with a peer's.
type Row struct {
	Name string
	Ours Side
	// Peer is nil for rows with no peer to compare with.
	Peer *Side
	// Figures, if set, replaces timing: the row reports what it returns
	// (e.g. peak RSS), measured once.
	Figures func(ctx context.Context) ([]Figure, error)
}

// A Figure is one measured value of a Figures row.
type Figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// Result is a row's outcome, as written to results.json.
type Result struct {
	Row         string          `json:"row"`
	Ours        string          `json:"ours,omitempty"`
	Peer        string          `json:"peer,omitempty"`
	OursSamples []time.Duration `json:"oursSamplesNs,omitempty"`
	PeerSamples []time.Duration `json:"peerSamplesNs,omitempty"`
	OursMedian  time.Duration   `json:"oursMedianNs,omitempty"`
	PeerMedian  time.Duration   `json:"peerMedianNs,omitempty"`
	// Ratio is OursMedian / PeerMedian; 0 without a peer.
	Ratio   float64  `json:"ratio,omitempty"`
	Figures []Figure `json:"figures,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// measure times row runs times on each side, alternating which side goes
// first so that warm caches and background load fall on both alike. One
// untimed warm-up run of each side comes first.
func measure(ctx context.Context, row Row, runs int) Result {
	res := Result{Row: row.Name, Ours: row.Ours.Name}
	if row.Figures != nil {
		figs, err := row.Figures(ctx)
		if err != nil {
			res.Error = err.Error()
		}
		res.Figures = figs
		return res
	}
	sides := []*Side{&row.Ours}
	if row.Peer != nil {
		res.Peer = row.Peer.Name
		sides = append(sides, row.Peer)
	}
	samples := make([][]time.Duration, len(sides))
	for i := -1; i < runs; i++ {
		for j := range sides {
			k := j
			if i%2 == 1 {
				k = len(sides) - 1 - j
			}
			d, err := timeOnce(ctx, sides[k])
			if err != nil {
				res.Error = fmt.Sprintf("%s: %v", sides[k].Name, err)
				return res
			}
			if i >= 0 {
				samples[k] = append(samples[k], d)
			}
		}
	}
	res.OursSamples, res.OursMedian = samples[0], median(samples[0])
	if row.Peer != nil {
		res.PeerSamples, res.PeerMedian = samples[1], median(samples[1])
		res.Ratio = float64(res.OursMedian) / float64(res.PeerMedian)
	}
	return res
}

func timeOnce(ctx context.Context, s *Side) (time.Duration, error) {
	if s.Prepare != nil {
		if err := s.Prepare(ctx); err != nil {
			return 0, fmt.Errorf("prepare: %w", err)
		}
	}
	var d time.Duration
	var err error
	if s.Measure != nil {
		d, err = s.Measure(ctx)
	} else {
		start := time.Now()
		err = s.Run(ctx)
		d = time.Since(start)
	}
	if err == nil && s.Check != nil {
		if err := s.Check(ctx); err != nil {
			return 0, fmt.Errorf("check: %w", err)
		}
	}
	return d, err
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// printTable writes results as an aligned table.
func printTable(w io.Writer, results []Result) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ROW\tBPFD\tMEDIAN\tPEER\tMEDIAN\tRATIO")
	for _, r := range results {
		switch {
		case r.Error != "":
			fmt.Fprintf(tw, "%s\t%s\tERROR: %s\t\t\t\n", r.Row, r.Ours, oneLine(r.Error))
		case r.Figures != nil:
			for _, f := range r.Figures {
				fmt.Fprintf(tw, "%s\t%s\t%s\t\t\t\n", r.Row, f.Name, formatFigure(f))
			}
		case r.Peer == "":
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\n", r.Row, r.Ours, formatDuration(r.OursMedian))
		default:
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f\n", r.Row, r.Ours, formatDuration(r.OursMedian), r.Peer, formatDuration(r.PeerMedian), r.Ratio)
		}
	}
	tw.Flush()
}

func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	case d >= time.Microsecond:
		return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	default:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	}
}

func formatFigure(f Figure) string {
	return strings.TrimSpace(fmt.Sprintf("%.4g %s", f.Value, f.Unit))
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
