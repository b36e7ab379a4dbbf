package podproc_test

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/podproc"
)

// absentUID is a pod uid no test makes.
const absentUID = "22222222-3333-4444-8555-666666666666"

func init() { testutil.RegisterUnprivileged("podproc-scan", serveScan) }

// serveScan scans /proc for the pod uids it is given, as an unprivileged
// bpfd-agent would, and prints the pods and its own network namespace as
// JSON.
func serveScan(uids []string, _ *bufio.Scanner, out io.Writer) error {
	pods, err := podproc.Scan("/proc", uids)
	if err != nil {
		return err
	}
	self, err := podproc.SelfNetns("/proc")
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(scanResult{Pods: pods, Self: self})
}

type scanResult struct {
	Pods map[string]podproc.Pod
	Self uint64
}

// TestScanPods: two pods with network namespaces of their own and a
// hostNetwork pod, under each cgroup driver, found by uid with their
// processes, containers and namespaces.
func TestScanPods(t *testing.T) {
	testutil.RequirePrivileged(t)
	host, err := podproc.SelfNetns("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, driver := range []testutil.CgroupDriver{testutil.CgroupDriverSystemd, testutil.CgroupDriverCgroupfs} {
		t.Run(string(driver), func(t *testing.T) {
			va, vb := testutil.NewVethPair(t), testutil.NewVethPair(t)
			a := testutil.StartPodProcessIn(t, driver, "", va.Netns)
			b := testutil.StartPodProcessIn(t, driver, "", vb.Netns)
			h := testutil.StartPodProcess(t, driver, "")

			pods, err := podproc.Scan("/proc", []string{a.PodUID, b.PodUID, h.PodUID, absentUID})
			if err != nil {
				t.Fatalf("Scan: %v", err)
			}
			want := map[string]podproc.Pod{
				a.PodUID: {UID: a.PodUID, Processes: []podproc.Process{{PID: a.PID, ContainerID: a.ContainerID, Netns: inode(t, va.Netns)}}},
				b.PodUID: {UID: b.PodUID, Processes: []podproc.Process{{PID: b.PID, ContainerID: b.ContainerID, Netns: inode(t, vb.Netns)}}},
				h.PodUID: {UID: h.PodUID, Processes: []podproc.Process{{PID: h.PID, ContainerID: h.ContainerID, Netns: host}}},
			}
			if diff := cmp.Diff(want, pods); diff != "" {
				t.Fatalf("Scan (-want +got):\n%s", diff)
			}
			if inode(t, va.Netns) == inode(t, vb.Netns) {
				t.Fatal("the two pods share a network namespace")
			}
			for _, p := range []*testutil.PodProcess{a, b} {
				if pid, ok := pods[p.PodUID].NetnsPID(host); pid != p.PID || !ok {
					t.Errorf("pod %s NetnsPID = %d, %v; want %d, true", p.PodUID, pid, ok, p.PID)
				}
			}
			if pid, ok := pods[h.PodUID].NetnsPID(host); ok {
				t.Errorf("hostNetwork pod NetnsPID = %d, true; want false", pid)
			}
			if pid, ok := pods[a.PodUID].ContainerPID("containerd://" + a.ContainerID); pid != a.PID || !ok {
				t.Errorf("ContainerPID = %d, %v; want %d, true", pid, ok, a.PID)
			}
			if pid, ok := pods[a.PodUID].ContainerPID(b.ContainerID); ok {
				t.Errorf("pod A's ContainerPID of B's container = %d, true; want false", pid)
			}
		})
	}
}

// TestScanUnprivileged: a scanner without privileges (uid 65534, no
// capabilities, as bpfd-agent) finds pods' processes by cgroup but may not
// read their network namespaces; NetnsPID then names a container's
// process unchecked, and bpfd checks.
func TestScanUnprivileged(t *testing.T) {
	v := testutil.NewVethPair(t)
	a := testutil.StartPodProcessIn(t, testutil.CgroupDriverSystemd, "", v.Netns)
	h := testutil.StartPodProcess(t, testutil.CgroupDriverCgroupfs, "")
	host, err := podproc.SelfNetns("/proc")
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, err := testutil.RunUnprivileged(t, nil, "podproc-scan", a.PodUID, h.PodUID)
	if err != nil {
		t.Fatalf("unprivileged scan: %v: %s", err, stderr)
	}
	var got scanResult
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("unprivileged scan: %q: %v", out, err)
	}
	want := scanResult{Self: host, Pods: map[string]podproc.Pod{
		a.PodUID: {UID: a.PodUID, Processes: []podproc.Process{{PID: a.PID, ContainerID: a.ContainerID}}},
		h.PodUID: {UID: h.PodUID, Processes: []podproc.Process{{PID: h.PID, ContainerID: h.ContainerID}}},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("unprivileged scan (-want +got):\n%s", diff)
	}
	for _, p := range []*testutil.PodProcess{a, h} {
		if pid, ok := got.Pods[p.PodUID].NetnsPID(host); pid != p.PID || !ok {
			t.Errorf("pod %s NetnsPID = %d, %v; want %d, true (unchecked)", p.PodUID, pid, ok, p.PID)
		}
	}
}

// podCgroup creates the cgroup of a container named as the cgroupfs
// driver names it, where the kubelet puts it, and returns the pod's uid,
// the container's id and an open descriptor of the cgroup, closed when the
// test ends.
func podCgroup(t *testing.T) (uid, cid string, fd int) {
	t.Helper()
	uid, cid = newUID(), newCID()
	dir, _ := testutil.NewPodCgroup(t, testutil.CgroupDriverCgroupfs, uid, cid)
	return uid, cid, mkCgroup(t, dir)
}

func newUID() string { return "33333333-4444-4555-8666-" + testutil.RandomSuffix(12) }
func newCID() string { return strings.Repeat("0", 32) + testutil.RandomSuffix(32) }

// mkCgroup creates the cgroup base/elems..., each directory removed when
// the test ends, and returns an open descriptor of it, closed before.
func mkCgroup(t *testing.T, base string, elems ...string) int {
	t.Helper()
	dir := base
	for _, e := range elems {
		dir = filepath.Join(dir, e)
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		} else if err == nil {
			d := dir
			t.Cleanup(func() { os.Remove(d) })
		}
	}
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

// startIn starts argv in the cgroup open at fd; the process is killed and
// reaped when the test ends, unless the test waited for it.
func startIn(t *testing.T, fd int, argv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

// TestScanZombie: a process that has exited but is not yet reaped still
// shows its pod's cgroup but no namespace; Scan leaves it out.
func TestScanZombie(t *testing.T) {
	testutil.RequirePrivileged(t)
	uid, cid, fd := podCgroup(t)
	live := startIn(t, fd, "sleep", "600")
	zombie := startIn(t, fd, "true")
	dir := "/proc/" + strconv.Itoa(zombie.Process.Pid)
	for deadline := time.Now().Add(10 * time.Second); ; {
		stat, err := os.ReadFile(dir + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		if _, rest, _ := strings.Cut(string(stat), ") "); strings.HasPrefix(rest, "Z") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not exit: %s", zombie.Process.Pid, stat)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The premise: the zombie's cgroup is still the pod's.
	if cg, err := os.ReadFile(dir + "/cgroup"); err != nil || !strings.Contains(string(cg), "/pod"+uid+"/"+cid) {
		t.Fatalf("zombie %d cgroup %q, %v; want the pod's", zombie.Process.Pid, cg, err)
	}
	pods, err := podproc.Scan("/proc", []string{uid})
	if err != nil {
		t.Fatal(err)
	}
	host, err := podproc.SelfNetns("/proc")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]podproc.Pod{uid: {UID: uid, Processes: []podproc.Process{{PID: live.Process.Pid, ContainerID: cid, Netns: host}}}}
	if diff := cmp.Diff(want, pods); diff != "" {
		t.Errorf("Scan (-want +got):\n%s", diff)
	}
}

// TestScanWhileProcessesExit: processes of the pod start and exit while
// Scan reads /proc; every scan succeeds, finds the pod's long-lived
// process, and reports of the pod only its processes.
func TestScanWhileProcessesExit(t *testing.T) {
	testutil.RequirePrivileged(t)
	uid, cid, fd := podCgroup(t)
	live := startIn(t, fd, "sleep", "600")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var started int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ; started < 5000; started++ {
			select {
			case <-stop:
				return
			default:
			}
			cmd := exec.Command("true")
			cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
			if err := cmd.Run(); err != nil {
				t.Errorf("churn: %v", err)
				return
			}
		}
	}()
	seen := 0
	for range 200 {
		pods, err := podproc.Scan("/proc", []string{uid})
		if err != nil {
			t.Fatalf("Scan: %v", err)
		}
		procs := pods[uid].Processes
		found := false
		for _, p := range procs {
			// A process caught exiting may deny its namespace (Netns 0,
			// unknown, as for a process not ours to read); the live one
			// never does.
			if p.ContainerID != cid || p.PID == live.Process.Pid && p.Netns == 0 {
				t.Errorf("Scan reported %+v", p)
			}
			found = found || p.PID == live.Process.Pid
		}
		if !found {
			t.Errorf("Scan = %+v; want pid %d among them", procs, live.Process.Pid)
		}
		seen += len(procs) - 1
	}
	close(stop)
	wg.Wait()
	t.Logf("%d processes started and exited; scans saw %d of them alive", started, seen)
}

// BenchmarkScan scans a /proc with 1,000 more processes than the machine
// runs, for two pods (one found when privileged).
func BenchmarkScan(b *testing.B) {
	var procs []*exec.Cmd
	b.Cleanup(func() {
		for _, c := range procs {
			c.Process.Kill()
			c.Wait()
		}
	})
	for range 1000 {
		c := exec.Command("sleep", "600")
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		procs = append(procs, c)
	}
	uids := []string{absentUID}
	if os.Geteuid() == 0 {
		uids = append(uids, testutil.StartPodProcess(b, testutil.CgroupDriverSystemd, "").PodUID)
	}
	entries, _ := os.ReadDir("/proc")
	b.ReportMetric(float64(len(entries)), "proc-entries")
	b.ResetTimer()
	for b.Loop() {
		pods, err := podproc.Scan("/proc", uids)
		if err != nil || len(pods) != len(uids)-1 {
			b.Fatalf("Scan = %v, %v", pods, err)
		}
	}
}
