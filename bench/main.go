package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A group sets up what its rows share (a registry, a daemon, signed
// artifacts) and returns the rows with a cleanup that undoes the set-up.
type group struct {
	name  string
	setup func(ctx context.Context, env *Env) ([]Row, func(), error)
}

// groups lists every row group, in the order of the printed table: the
// supply chain, then the daemon from a cold signed load to cached loads,
// list, get and restarts, then the dispatcher's per-packet cost.
var groups = []group{
	{name: "supply chain", setup: supplyChainRows},
	{name: "bpfd: cold signed load", setup: coldLoadRows},
	{name: "bpfd: load+attach+unload", setup: daemonLatencyRows},
	{name: "bpfd: list, get, restart", setup: daemonListRows},
	{name: "dispatcher", setup: dispatcherRows},
}

// Env is what every group may use.
type Env struct {
	// Root is the repository root; Bin its bin/ and Tools bin/tools.
	Root, Bin, Tools string
	// Dir is a scratch directory removed at the end.
	Dir string
}

// Report is results.json.
type Report struct {
	Date   time.Time `json:"date"`
	Kernel string    `json:"kernel"`
	CPUs   int       `json:"cpus"`
	Go     string    `json:"go"`
	Runs   int       `json:"runs"`
	// LoadBefore and LoadAfter are the machine's 1, 5 and 15 minute load
	// averages when the run began and ended: the figures of a busy machine
	// vary more.
	LoadBefore [3]float64 `json:"loadBefore"`
	LoadAfter  [3]float64 `json:"loadAfter"`
	Results    []Result   `json:"results"`
}

func main() {
	runs := flag.Int("runs", 7, "timed runs of each side of a row (at least 5)")
	only := flag.String("rows", "", "run only the rows whose name matches this regular expression")
	onlyGroups := flag.String("groups", "", "set up and run only the groups whose name matches this regular expression: "+groupNames())
	out := flag.String("out", "bench/results.json", "where to write the results")
	flag.Parse()
	if err := run(*runs, *onlyGroups, *only, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(runs int, onlyGroups, only, out string) error {
	if runs < 5 {
		return fmt.Errorf("-runs %d: medians need at least 5 runs", runs)
	}
	groupFilter, err := regexp.Compile(onlyGroups)
	if err != nil {
		return fmt.Errorf("-groups: %w", err)
	}
	filter, err := regexp.Compile(only)
	if err != nil {
		return fmt.Errorf("-rows: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root, err := os.Getwd()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bpfd-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	env := &Env{Root: root, Bin: filepath.Join(root, "bin"), Tools: filepath.Join(root, "bin", "tools"), Dir: dir}

	report := Report{Date: time.Now().UTC(), Kernel: kernelRelease(), CPUs: runtime.NumCPU(), Go: runtime.Version(), Runs: runs, LoadBefore: loadAverage()}
	for _, g := range groups {
		if ctx.Err() != nil {
			break
		}
		if !groupFilter.MatchString(g.name) {
			continue
		}
		rows, cleanup, err := g.setup(ctx, env)
		if err != nil {
			report.Results = append(report.Results, Result{Row: g.name, Error: "set-up: " + err.Error()})
			continue
		}
		for _, row := range rows {
			if !filter.MatchString(row.Name) || ctx.Err() != nil {
				continue
			}
			fmt.Fprintf(os.Stderr, "bench: %s\n", row.Name)
			report.Results = append(report.Results, measure(ctx, row, runs))
		}
		if cleanup != nil {
			cleanup()
		}
	}
	report.LoadAfter = loadAverage()
	fmt.Printf("bpfd benchmarks: %s, %d CPUs, %s, medians of %d runs; ratio = bpfd / peer (below 1: bpfd faster)\n", report.Kernel, report.CPUs, report.Go, runs)
	fmt.Printf("load average (1, 5, 15 min): %.2f %.2f %.2f before, %.2f %.2f %.2f after\n\n", report.LoadBefore[0], report.LoadBefore[1], report.LoadBefore[2], report.LoadAfter[0], report.LoadAfter[1], report.LoadAfter[2])
	printTable(os.Stdout, report.Results)
	data, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, append(data, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n", out)
	return ctx.Err()
}

// groupNames lists the groups' names, quoted, for -groups's usage.
func groupNames() string {
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = fmt.Sprintf("%q", g.name)
	}
	return strings.Join(names, ", ")
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return strings.TrimSpace(unix.ByteSliceToString(u.Release[:]))
}

// loadAverage returns the 1, 5 and 15 minute load averages, zero when the
// kernel does not say.
func loadAverage() [3]float64 {
	var load [3]float64
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return load
	}
	if _, err := fmt.Sscanf(string(data), "%f %f %f", &load[0], &load[1], &load[2]); err != nil {
		return [3]float64{}
	}
	return load
}
