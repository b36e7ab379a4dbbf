package daemon

import (
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// TestMetrics scrapes /metrics after loads, a denial and a cache hit, with
// the kernel's BPF statistics on: every metric bpfd documents is there,
// with the program's run count.
func TestMetrics(t *testing.T) {
	addr := testutil.FreeLoopbackAddr(t)
	td := newTestDaemon(t, func(c *Config) { c.Metrics.Address = addr })
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		t.Fatalf("enable BPF statistics: %v", err)
	}
	defer stats.Close()

	ref := td.image(t, "tracepoint", true, "tracepoint_counter.bpf.o")
	p := td.mustLoad(t, ref, tracepointProg("tracepoint_counter", "syscalls/sys_enter_openat"))[0]
	for range 10 {
		f, err := os.Open("/proc/self/stat")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	td.mustLoad(t, ref, tracepointProg("tracepoint_counter", "syscalls/sys_enter_getpid")) // from the cache
	_, err = td.load(t, td.image(t, "unsigned", false, "xdp_counter.bpf.o"), xdpProg("xdp_counter", "lo", ""))
	wantCode(t, err, codes.PermissionDenied)

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := strconv.FormatUint(p.GetId(), 10)
	for _, want := range []string{
		`bpfd_programs_loaded{type="tracepoint"} 2`,
		`bpfd_programs_loaded{type="xdp"} 0`,
		`bpfd_load_duration_seconds_count{result="ok"} 2`,
		`bpfd_load_duration_seconds_count{result="error"} 1`,
		`bpfd_verifications_total{decision="allow",reason=""} 2`,
		`bpfd_verifications_total{decision="deny",reason="unsigned"} 1`,
		`bpfd_cache_misses_total 2`,
		`bpfd_cache_hits_total 1`,
		`bpfd_requests_total{code="OK",method="Load"} 2`,
		`bpfd_requests_total{code="PermissionDenied",method="Load"} 1`,
		`bpfd_policy_info{fingerprint="` + td.d.chain.PolicyFingerprint() + `"} 1`,
		`bpfd_program_run_count_total{id="` + id + `",name="tracepoint_counter",type="tracepoint"} `,
		`bpfd_program_run_time_seconds_total{id="` + id + `",name="tracepoint_counter",type="tracepoint"} `,
		`bpfd_programs_not_admitted 0`,
		`bpfd_programs_revoked_total 0`,
		`bpfd_cache_size_bytes `,
		`go_goroutines `,
	} {
		if !regexp.MustCompile(regexp.QuoteMeta(want)).Match(body) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if m := regexp.MustCompile(`bpfd_program_run_count_total\{[^}]*\} (\d+)`).FindSubmatch(body); m == nil || string(m[1]) == "0" {
		t.Errorf("run count %q, want the openat calls counted", m)
	}
}

// TestConcurrentClients: many clients load and unload at once, on their
// own tracepoint hooks and on a shared one.
func TestConcurrentClients(t *testing.T) {
	td := newTestDaemon(t)
	ref := td.image(t, "tracepoint", true, "tracepoint_counter.bpf.o")
	tracepoints := []string{"syscalls/sys_enter_getpid", "syscalls/sys_enter_getppid", "syscalls/sys_enter_openat", "syscalls/sys_enter_close"}
	before := td.snapshot(t)

	const clients, rounds = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, clients*rounds)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := td.dial(t)
			defer conn.Close()
			client := pb.NewBpfdClient(conn)
			for range rounds {
				resp, err := client.Load(context.Background(), &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: ref},
					Programs: []*pb.LoadProgram{tracepointProg("tracepoint_counter", tracepoints[c%len(tracepoints)])}})
				if err != nil {
					errs <- err
					return
				}
				if _, err := client.Unload(context.Background(), &pb.UnloadRequest{Ids: ids(resp.GetPrograms())}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	td.assertUnchanged(t, before)
}
