package podproc_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/podproc"
)

// scanInCgroupnsEnv tells the test binary, started in a container's
// cgroup, to scan /proc for the uids it holds (comma-separated) from a
// cgroup namespace of its own, as bpfd-agent in an unprivileged container
// on cgroup v2 does.
const scanInCgroupnsEnv = "BPFD_PODPROC_SCAN_IN_CGROUPNS"

// serveScanInCgroupns is the child's side: it prints its own cgroup as its
// namespace shows it and the scan's pods, as JSON, and exits.
func serveScanInCgroupns() {
	uids, ok := os.LookupEnv(scanInCgroupnsEnv)
	if !ok {
		return
	}
	if err := scanInCgroupns(strings.Split(uids, ",")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func scanInCgroupns(uids []string) error {
	// A namespace is a thread's: this one enters it and scans.
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	own, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil {
		return err
	}
	pods, err := podproc.Scan("/proc", uids)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(cgroupnsResult{Own: string(own), Pods: pods})
}

type cgroupnsResult struct {
	Own  string
	Pods map[string]podproc.Pod
}

// TestScanInCgroupNamespace: a scanner in a container's cgroup, in a cgroup
// namespace of its own (bpfd-agent on cgroup v2), sees the other pods'
// cgroups relative to its container's, under each driver, and finds
// pods of every QoS class, its own QoS's and others'.
func TestScanInCgroupNamespace(t *testing.T) {
	testutil.RequirePrivileged(t)
	host, err := podproc.SelfNetns("/proc")
	if err != nil {
		t.Fatal(err)
	}
	type pod struct{ uid, cid string }
	layouts := map[string]struct {
		// container returns the cgroup elements of a container of a pod
		// of QoS class qos ("" Guaranteed, "burstable", "besteffort").
		container func(qos string, p pod) []string
	}{
		"systemd": {container: func(qos string, p pod) []string {
			u := strings.ReplaceAll(p.uid, "-", "_")
			if qos == "" {
				return []string{"kubepods.slice", "kubepods-pod" + u + ".slice", "cri-containerd-" + p.cid + ".scope"}
			}
			return []string{"kubepods.slice", "kubepods-" + qos + ".slice", "kubepods-" + qos + "-pod" + u + ".slice", "cri-containerd-" + p.cid + ".scope"}
		}},
		"cgroupfs": {container: func(qos string, p pod) []string {
			if qos == "" {
				return []string{"kubepods", "pod" + p.uid, p.cid}
			}
			return []string{"kubepods", qos, "pod" + p.uid, p.cid}
		}},
	}
	for name, l := range layouts {
		t.Run(name, func(t *testing.T) {
			base := testutil.NewCgroup(t)
			agent := pod{newUID(), newCID()}
			agentFD := mkCgroup(t, base, l.container("burstable", agent)...)
			want := map[string]podproc.Pod{}
			var uids []string
			for _, qos := range []string{"burstable", "besteffort", ""} {
				p := pod{newUID(), newCID()}
				proc := startIn(t, mkCgroup(t, base, l.container(qos, p)...), "sleep", "600")
				want[p.uid] = podproc.Pod{UID: p.uid, Processes: []podproc.Process{{PID: proc.Process.Pid, ContainerID: p.cid, Netns: host}}}
				uids = append(uids, p.uid)
			}

			self, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(self, "-test.run=^$")
			cmd.Env = append(os.Environ(), scanInCgroupnsEnv+"="+strings.Join(uids, ","))
			cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: agentFD}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("scan in a cgroup namespace: %v: %s", err, stderr.String())
			}
			var got cgroupnsResult
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%q: %v", out, err)
			}
			// The premise: the scanner's namespace is rooted at its container's cgroup.
			if !slices.Contains(strings.Split(got.Own, "\n"), "0::/") {
				t.Fatalf("the scanner's own cgroup reads %q; want 0::/", got.Own)
			}
			if diff := cmp.Diff(want, got.Pods); diff != "" {
				t.Errorf("Scan from a container's cgroup namespace (-want +got):\n%s", diff)
			}
		})
	}
}
