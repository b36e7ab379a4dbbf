package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/rest"
)

var k8sProfile = flag.String("k8s-profile", "", "directory for CPU profiles of each k8s phase, of this process and of kube-apiserver, and a heap profile after creation (k8s-PHASE.cpu.pprof, k8s-PHASE.apiserver.N.pprof, k8s-heap.pprof)")

// apiserverProfileSeconds is the length of each of the API server's CPU
// profiles a phase takes in turn.
const apiserverProfileSeconds = 10

// profilePhase starts a CPU profile of phase into -k8s-profile, of this
// process and of the API server cfg reaches, and returns the function that
// stops both; without the flag both do nothing.
func profilePhase(phase string, cfg *rest.Config) (stop func()) {
	if *k8sProfile == "" {
		return func() {}
	}
	stopServer := profileAPIServer(phase, cfg)
	stopSelf := profileSelf(phase)
	return func() {
		stopSelf()
		stopServer()
	}
}

// profileAPIServer takes the API server's CPU profiles (its
// /debug/pprof/profile, on by default) one after the other, each
// apiserverProfileSeconds long, into k8s-PHASE.apiserver.N.pprof, until
// stop, which waits for the one under way. `go tool pprof` merges them:
// go tool pprof -top bin/k8s/kube-apiserver k8s-create.apiserver.*.pprof
func profileAPIServer(phase string, cfg *rest.Config) (stop func()) {
	c, err := rest.HTTPClientFor(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: k8s: API server profile:", err)
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", strings.TrimSuffix(cfg.Host, "/"), apiserverProfileSeconds)
			if err := fetchTo(c, url, filepath.Join(*k8sProfile, fmt.Sprintf("k8s-%s.apiserver.%d.pprof", phase, i))); err != nil {
				// A busy server drops connections; the next profile
				// may get through.
				fmt.Fprintln(os.Stderr, "bench: k8s: API server profile:", err)
				select {
				case <-done:
					return
				case <-time.After(time.Second):
				}
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// fetchTo writes what a GET of url answers into file path, giving up
// after twice a profile's length (a saturated API server may never answer).
func fetchTo(c *http.Client, url, path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*apiserverProfileSeconds*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// profileSelf starts a CPU profile of this process for phase and returns
// the function that stops it.
func profileSelf(phase string) (stop func()) {
	f, err := os.Create(filepath.Join(*k8sProfile, "k8s-"+phase+".cpu.pprof"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: k8s: profile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "bench: k8s: profile:", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// writeHeapProfile writes the heap profile into -k8s-profile, if set.
func writeHeapProfile() {
	if *k8sProfile == "" {
		return
	}
	f, err := os.Create(filepath.Join(*k8sProfile, "k8s-heap.pprof"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: k8s: profile:", err)
		return
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "bench: k8s: profile:", err)
	}
}

// selfPeakRSS returns the bench process's peak resident set in MiB (VmHWM):
// the agents, the in-memory bpfds and the operator, not the API server or
// etcd, which run as processes of their own.
func selfPeakRSS() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0
			}
			return kb / 1024
		}
	}
	return 0
}

// apiserverRequests returns the API server's own count of the requests it
// served (apiserver_request_total), by verb and resource ("PUT
// bpfprogramconfigs/status"), from its /metrics.
func apiserverRequests(ctx context.Context, cfg *rest.Config) (map[string]float64, error) {
	c, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cfg.Host, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("API server metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("API server metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("API server metrics: %w", err)
	}
	out := map[string]float64{}
	f := families["apiserver_request_total"]
	if f == nil {
		return out, nil
	}
	for _, m := range f.GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		if l["group"] != "bpfd.io" && l["resource"] != "nodes" {
			continue
		}
		key := l["verb"] + " " + l["resource"]
		if l["subresource"] != "" {
			key += "/" + l["subresource"]
		}
		out[key] += m.GetCounter().GetValue()
	}
	return out, nil
}

// apiserverFigures reports the API server's counts between two snapshots.
func apiserverFigures(before, after map[string]float64) []Figure {
	var figs []Figure
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if d := after[k] - before[k]; d > 0 {
			figs = append(figs, Figure{Name: "API server " + k, Value: d, Unit: "requests"})
		}
	}
	return figs
}

// childCPU returns the CPU time, user and system, in seconds, that each of
// this process's children named in names (by their comm) used so far.
func childCPU(names ...string) map[string]float64 {
	out := map[string]float64{}
	self := strconv.Itoa(os.Getpid())
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime(14) stime(15)
		s := string(data)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		comm := s[open+1 : end]
		f := strings.Fields(s[end+1:])
		if len(f) < 13 || f[1] != self || !slices.Contains(names, comm) {
			continue
		}
		utime, _ := strconv.ParseFloat(f[11], 64)
		stime, _ := strconv.ParseFloat(f[12], 64)
		out[comm] += (utime + stime) / 100 // USER_HZ
	}
	return out
}
