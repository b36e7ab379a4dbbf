package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// listLevels are the numbers of managed programs the list and get rows run
// with, in ascending order: each level loads the programs it adds.
var listLevels = []int{1, 100, 1000}

// syscallTracepointCount is how many syscall tracepoints the programs are
// spread over: the kernel takes 64 programs per tracepoint, and 25 each
// leave room for other programs on a busy machine.
const syscallTracepointCount = 40

// listDaemon is a bpfd whose programs the list rows add as they go.
type listDaemon struct {
	*benchDaemon
	tracepoints []string
	// owner is the first program's id: the others share its maps.
	owner  uint64
	loaded int
}

// daemonListRows times `bpfctl list` (a table and -o json) and `bpfctl get`
// with 1, 100 and 1,000 managed programs, then with 1,000 bpfctl top,
// inventory and list --all (top.go) (tracepoint programs over
// syscallTracepointCount syscall tracepoints, sharing the first one's maps,
// loaded through the API by each level's first run's untimed Prepare),
// against `bpftool prog show` (and --json) listing the same programs (and
// whatever else the kernel runs), then, with 1,000, bpfd's peak RSS, its
// restart time (SIGTERM until the health service answers SERVING for
// bpfd.v1, the new process having adopted the 1,000 programs) and its start
// time (exec until SERVING). get has no peer: bpftool keeps no record of
// what it loaded.
func daemonListRows(ctx context.Context, env *Env) (_ []Row, _ func(), err error) {
	if _, err := exec.LookPath("bpftool"); err != nil {
		return nil, nil, fmt.Errorf("bpftool: %w (hack/tools.sh apt)", err)
	}
	bd, err := startDaemon(ctx, env, "daemon-list", "tracepoint_counter.bpf.o")
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			bd.stop()
		}
	}()
	d := &listDaemon{benchDaemon: bd}
	if d.tracepoints, err = syscallTracepoints(syscallTracepointCount); err != nil {
		return nil, nil, err
	}

	var rows []Row
	for _, n := range listLevels {
		programs := fmt.Sprintf("%s loaded", plural(n, "program"))
		prepare := func(ctx context.Context) error { return d.ensure(ctx, n) }
		var ours, peer []byte
		rows = append(rows,
			Row{Name: "bpfd: bpfctl list, " + programs,
				Ours: Side{Name: "bpfctl list", Prepare: prepare, Run: d.list(&ours), Check: d.listed(&ours, n)},
				Peer: &Side{Name: "bpftool prog show", Prepare: prepare, Run: bpftoolShow(&peer), Check: d.shown(&peer, false)}},
			Row{Name: "bpfd: bpfctl list -o json, " + programs,
				Ours: Side{Name: "bpfctl list -o json", Prepare: prepare, Run: d.list(&ours, "-o", "json"), Check: d.listed(&ours, n)},
				Peer: &Side{Name: "bpftool prog show --json", Prepare: prepare, Run: bpftoolShow(&peer, "--json"), Check: d.shown(&peer, true)}},
			Row{Name: "bpfd: bpfctl get, " + programs, Ours: Side{Name: "bpfctl get ID", Prepare: prepare, Run: d.get}},
		)
	}
	most := listLevels[len(listLevels)-1]
	rows = append(rows, d.topRows(most, func(ctx context.Context) error { return d.ensure(ctx, most) })...)
	programs := plural(most, "program")
	serving := func(ctx context.Context) error {
		list, err := d.client.List(ctx, &pb.ListRequest{})
		if err != nil {
			return err
		}
		if got := len(list.GetPrograms()); got != most {
			return fmt.Errorf("bpfd lists %d programs after the restart, want %d", got, most)
		}
		return nil
	}
	rows = append(rows,
		Row{Name: "bpfd: memory, " + programs + " loaded through the API", Figures: d.memory},
		Row{Name: "bpfd: restart to serving, " + programs, Ours: Side{
			Name: "SIGTERM, exit, start, until SERVING",
			Measure: func(ctx context.Context) (time.Duration, error) {
				start := time.Now()
				if err := d.terminate(); err != nil {
					return 0, err
				}
				err := d.start(ctx)
				return time.Since(start), err
			},
			Check: serving,
		}},
		Row{Name: "bpfd: start to serving, " + programs, Ours: Side{
			Name:    "exec until SERVING",
			Prepare: func(context.Context) error { return d.terminate() },
			Measure: func(ctx context.Context) (time.Duration, error) {
				start := time.Now()
				err := d.start(ctx)
				return time.Since(start), err
			},
			Check: serving,
		}},
		Row{Name: "bpfd: memory, " + programs + " adopted at start", Figures: func(ctx context.Context) ([]Figure, error) {
			// The process the last start left, after it listed them all.
			if err := serving(ctx); err != nil {
				return nil, err
			}
			return d.memory(ctx)
		}},
	)
	return rows, d.stop, nil
}

// ensure loads programs through the API until bpfd manages n of them.
func (d *listDaemon) ensure(ctx context.Context, n int) error {
	if d.loaded > n {
		return fmt.Errorf("%d programs loaded, more than the %d wanted (run the levels in ascending order)", d.loaded, n)
	}
	for ; d.loaded < n; d.loaded++ {
		tp := d.tracepoints[d.loaded%len(d.tracepoints)]
		resp, err := d.client.Load(ctx, &pb.LoadRequest{
			Bytecode:   &pb.Bytecode{Reference: d.refs["tracepoint_counter.bpf.o"]},
			Programs:   []*pb.LoadProgram{{Name: "tracepoint_counter", Type: pb.ProgramType_PROGRAM_TYPE_TRACEPOINT, Attach: &pb.AttachSpec{Spec: &pb.AttachSpec_Tracepoint{Tracepoint: &pb.TracepointAttach{Tracepoint: tp}}}}},
			MapOwnerId: d.owner,
			Metadata:   map[string]string{"bench": "list"},
		})
		if err != nil {
			return fmt.Errorf("load %d of %d on %s: %w", d.loaded+1, n, tp, err)
		}
		if d.owner == 0 {
			d.owner = resp.GetPrograms()[0].GetId()
		}
	}
	return nil
}

// list runs `bpfctl list` with args, its output to out.
func (d *listDaemon) list(out *[]byte, args ...string) func(context.Context) error {
	return func(ctx context.Context) (err error) {
		*out, err = d.bpfctl(ctx, append([]string{"list"}, args...)...)
		return err
	}
}

// listed checks that the output of `bpfctl list` showed all n programs.
func (d *listDaemon) listed(out *[]byte, n int) func(context.Context) error {
	return func(context.Context) error {
		if got := bytes.Count(*out, []byte("tracepoint_counter")); got < n {
			return fmt.Errorf("bpfctl list showed %d programs, want %d", got, n)
		}
		return nil
	}
}

// bpftoolShow runs `bpftool prog show` with args, its output to out.
func bpftoolShow(out *[]byte, args ...string) func(context.Context) error {
	return func(ctx context.Context) (err error) {
		*out, err = runTool(ctx, "bpftool", append([]string{"prog", "show"}, args...)...)
		return err
	}
}

// bpftoolID finds the program ids in `bpftool prog show` output: "ID:
// type ..." lines, or "id" fields of --json.
var bpftoolID = map[bool]*regexp.Regexp{
	false: regexp.MustCompile(`(?m)^(\d+): `),
	true:  regexp.MustCompile(`"id":(\d+)`),
}

// shown checks that bpftool's output out showed the kernel program of
// every program bpfd manages.
func (d *listDaemon) shown(out *[]byte, asJSON bool) func(context.Context) error {
	return func(ctx context.Context) error {
		ids := map[string]bool{}
		for _, m := range bpftoolID[asJSON].FindAllSubmatch(*out, -1) {
			ids[string(m[1])] = true
		}
		list, err := d.client.List(ctx, &pb.ListRequest{})
		if err != nil {
			return err
		}
		for _, p := range list.GetPrograms() {
			if id := strconv.FormatUint(uint64(p.GetKernel().GetProgramId()), 10); !ids[id] {
				return fmt.Errorf("bpftool prog show did not show program %d (kernel program %s)", p.GetId(), id)
			}
		}
		return nil
	}
}

// get runs `bpfctl get` of the first program.
func (d *listDaemon) get(ctx context.Context) error {
	out, err := d.bpfctl(ctx, "get", strconv.FormatUint(d.owner, 10))
	if err != nil {
		return err
	}
	if !bytes.Contains(out, []byte("tracepoint_counter")) {
		return fmt.Errorf("bpfctl get %d does not show the program: %s", d.owner, out)
	}
	return nil
}

// memory reports the daemon's peak and current resident set size (VmHWM,
// VmRSS of /proc/PID/status), and the current one split into anonymous
// memory (RssAnon: the Go heap, stacks, the runtime's own) and file pages
// (RssFile: the executable's text and read-only data the process touched,
// and the state store's mapping), which do not grow with programs.
func (d *listDaemon) memory(context.Context) ([]Figure, error) {
	if d.cmd == nil {
		return nil, errors.New("bpfd is not running")
	}
	status, err := os.Open(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		return nil, err
	}
	defer status.Close()
	fields := map[string]string{"VmHWM": "peak RSS (VmHWM)", "VmRSS": "RSS (VmRSS)", "RssAnon": "RSS anonymous (RssAnon)", "RssFile": "RSS file pages (RssFile)"}
	var figs []Figure
	s := bufio.NewScanner(status)
	for s.Scan() {
		key, value, _ := strings.Cut(s.Text(), ":")
		name, ok := fields[key]
		if !ok {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", key, value, err)
		}
		figs = append(figs, Figure{Name: name, Value: kb / 1024, Unit: "MiB"})
	}
	if len(figs) != len(fields) {
		return nil, fmt.Errorf("/proc/%d/status lacks VmHWM, VmRSS, RssAnon or RssFile", d.cmd.Process.Pid)
	}
	return figs, s.Err()
}

// plural returns "1 program", "1,000 programs".
func plural(n int, noun string) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if n != 1 {
		noun += "s"
	}
	return s + " " + noun
}

// syscallTracepoints returns n syscall entry tracepoints of this kernel,
// picked at random, so that benchmarks running at once on one machine
// rarely share one (the kernel takes 64 programs per tracepoint).
func syscallTracepoints(n int) ([]string, error) {
	for _, root := range []string{"/sys/kernel/tracing/events/syscalls", "/sys/kernel/debug/tracing/events/syscalls"} {
		entries, err := os.ReadDir(root)
		if err != nil {
			continue
		}
		var all []string
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "sys_enter_") {
				all = append(all, "syscalls/"+e.Name())
			}
		}
		if len(all) >= n {
			rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
			return all[:n], nil
		}
	}
	return nil, errors.New("fewer syscall tracepoints than needed (is tracefs mounted?)")
}
