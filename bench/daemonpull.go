package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// daemonPullFigures measures bpfd's memory while it pulls a's artifact,
// pushed to repository repo: a bpfd started for the row (untimed) trusts a
// key that signs the artifact there; each of rssRuns runs empties its
// cache (bpfctl cache prune --all), reads its resident set (VmRSS, idle),
// resets its peak (/proc/PID/clear_refs), has it pull the artifact with
// `bpfctl pull --pull-policy Always` and reads its peak (VmHWM). It reports
// the median peak and the median of peak minus idle.
func (sc *supplyChain) daemonPullFigures(env *Env, a *builtArtifact, repo string) func(context.Context) ([]Figure, error) {
	return func(ctx context.Context) (_ []Figure, err error) {
		d, err := newDaemon(env, "daemon-big-pull")
		if err != nil {
			return nil, err
		}
		defer d.stop()
		ref := sc.ref(repo, "@"+a.Digest.String())
		if err := d.key.Sign(ctx, ref, verify.FormatBundle); err != nil {
			return nil, err
		}
		if err := d.writePolicy(sc.reg.Host + "/**"); err != nil {
			return nil, err
		}
		if err := d.start(ctx); err != nil {
			return nil, err
		}
		pid := d.cmd.Process.Pid
		var peaks, overIdle []float64
		for range rssRuns {
			if _, err := d.bpfctl(ctx, "cache", "prune", "--all"); err != nil {
				return nil, err
			}
			idle, err := procStatusMiB(pid, "VmRSS")
			if err != nil {
				return nil, err
			}
			if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
				return nil, fmt.Errorf("reset bpfd's peak RSS: %w", err)
			}
			if _, err := d.bpfctl(ctx, "--timeout", "5m", "pull", "--pull-policy", "Always", ref); err != nil {
				return nil, err
			}
			peak, err := procStatusMiB(pid, "VmHWM")
			if err != nil {
				return nil, err
			}
			peaks, overIdle = append(peaks, peak), append(overIdle, peak-idle)
		}
		slices.Sort(peaks)
		slices.Sort(overIdle)
		return []Figure{
			{Name: "bpfd peak RSS", Value: peaks[len(peaks)/2], Unit: "MiB"},
			{Name: "bpfd peak RSS over idle", Value: overIdle[len(overIdle)/2], Unit: "MiB"},
		}, nil
	}
}

// procStatusMiB reads one kB field of /proc/PID/status in MiB.
func procStatusMiB(pid int, field string) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		key, value, _ := strings.Cut(s.Text(), ":")
		if key != field {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %w", field, value, err)
		}
		return kb / 1024, nil
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/proc/%d/status lacks %s", pid, field)
}
