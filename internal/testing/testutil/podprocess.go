package testutil

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// podProcessEnv tells a test binary started by StartPodProcess which cgroup
// to join before it loads its program.
const podProcessEnv = "BPFD_TESTUTIL_POD_PROCESS"

// CgroupDriver is how the kubelet names its cgroups.
type CgroupDriver string

// The kubelet's cgroup drivers.
const (
	CgroupDriverSystemd  CgroupDriver = "systemd"
	CgroupDriverCgroupfs CgroupDriver = "cgroupfs"
)

// PodProcess is a process the test started in a cgroup named as the kubelet
// and containerd name a Burstable pod's container's, holding a BPF program
// and a map it loaded itself, outside bpfd.
type PodProcess struct {
	PID int
	// PodUID and ContainerID name the cgroup; Cgroup is its path below the cgroup v2 mount, as
	// /proc/<pid>/cgroup shows it.
	PodUID, ContainerID string
	Cgroup              string
	// ProgramID and MapID are the kernel ids of what it holds; ProgramName
	// the program's name.
	ProgramID, MapID uint32
	ProgramName      string

	stdin  io.Writer
	stdout *bufio.Reader
}

// CallUprobeTarget has the pod process call UprobeTarget n times, on one
// thread, and waits until it has.
func (p *PodProcess) CallUprobeTarget(tb testing.TB, n int) {
	tb.Helper()
	if _, err := fmt.Fprintf(p.stdin, "call %d\n", n); err != nil {
		tb.Fatalf("pod process %d: %v", p.PID, err)
	}
	line, err := p.stdout.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "called" {
		tb.Fatalf("pod process %d: %q, %v; want called", p.PID, line, err)
	}
}

// StartPodProcess creates the cgroup of a container of random id in the
// pod with uid podUID (random when empty) as driver names it, where a
// kubelet puts it (a pod's cgroup names a pod only there: see
// podproc.ParsePodCgroup), and starts the test binary as a child process
// that moves itself into it, loads a socket filter program and its map and
// holds them until the test ends. The child is served by LeakCheckMain,
// which the package's TestMain must call.
//
// Under the systemd driver, the pod's slices are below a kubelet cgroup
// root of random name, a slice at the root of the cgroup v2 mount
// (/bpfdtest_<random>.slice/bpfdtest_<random>-kubepods.slice/...), which
// no other test shares. Under the cgroupfs driver, whose names do not say
// where they live, the pod is in /kubepods/burstable at the root, shared
// with the other tests (see sharedCgroups).
func StartPodProcess(tb testing.TB, driver CgroupDriver, podUID string) *PodProcess {
	tb.Helper()
	return StartPodProcessIn(tb, driver, podUID, "")
}

// StartPodProcessIn is StartPodProcess with the process started in the
// network namespace at netnsPath (a pod's own, as a CNI plugin makes
// one); "" leaves it in the test's (a hostNetwork pod's).
func StartPodProcessIn(tb testing.TB, driver CgroupDriver, podUID, netnsPath string) *PodProcess {
	tb.Helper()
	RequirePrivileged(tb)
	if podUID == "" {
		podUID = randomUUID()
	}
	p := &PodProcess{PodUID: podUID, ContainerID: randomHex(64), ProgramName: "pod_" + RandomSuffix(8)}
	dir, cg := NewPodCgroup(tb, driver, p.PodUID, p.ContainerID)
	p.Cgroup = cg

	cmd := exec.Command(UprobeTargetBinary(tb), "-test.run=^$")
	cmd.Env = append(os.Environ(), podProcessEnv+"="+dir+":"+p.ProgramName, "GODEBUG=asyncpreemptoff=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := startIn(cmd, netnsPath); err != nil {
		tb.Fatalf("pod process: %v", err)
	}
	tb.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	p.PID = cmd.Process.Pid
	p.stdin, p.stdout = stdin, bufio.NewReader(stdout)
	line, err := p.stdout.ReadString('\n')
	if err != nil {
		tb.Fatalf("pod process: no ids: %v", err)
	}
	if _, err := fmt.Sscanf(line, "%d %d", &p.ProgramID, &p.MapID); err != nil {
		tb.Fatalf("pod process: %q: %v", line, err)
	}
	return p
}

// NewPodCgroup creates the cgroup of the container containerID in the
// Burstable pod podUID as driver names it, where a kubelet puts it (see
// StartPodProcess), removed when the test ends (after the test's later
// cleanups: its processes must be gone by then). It returns the
// directory and the cgroup's path as /proc/<pid>/cgroup shows it.
func NewPodCgroup(tb testing.TB, driver CgroupDriver, podUID, containerID string) (dir, cgroup string) {
	tb.Helper()
	RequirePrivileged(tb)
	root, err := cgroupV2Root()
	if err != nil {
		skipOrFail(tb, RequirePrivilegedEnv, "cgroup v2: %v", err)
	}
	// shared are the kubelet's cgroups that other tests may use at the
	// same time; own are this pod's.
	var shared, own []string
	switch driver {
	case CgroupDriverSystemd:
		top := "bpfdtest_" + RandomSuffix(8)
		own = []string{top + ".slice", top + "-kubepods.slice", top + "-kubepods-burstable.slice",
			top + "-kubepods-burstable-pod" + strings.ReplaceAll(podUID, "-", "_") + ".slice",
			"cri-containerd-" + containerID + ".scope"}
	case CgroupDriverCgroupfs:
		shared = []string{"kubepods", "burstable"}
		own = []string{"pod" + podUID, containerID}
	default:
		tb.Fatalf("cgroup driver %q", driver)
	}
	dir = makePodCgroup(tb, root, shared, own)
	return dir, "/" + strings.Join(append(slices.Clip(shared), own...), "/")
}

// servePodProcess is the child side of StartPodProcess: it joins the
// cgroup, loads, prints "PROGRAM_ID MAP_ID" and holds them until stdin
// closes, then exits the process.
func servePodProcess() {
	v, ok := os.LookupEnv(podProcessEnv)
	if !ok {
		return
	}
	if err := podProcess(v); err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q: %v\n", podProcessEnv, v, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func podProcess(spec string) error {
	dir, name, ok := strings.Cut(spec, ":")
	if !ok {
		return fmt.Errorf("want DIR:NAME")
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: name, Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return err
	}
	defer m.Close()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: name, Type: ebpf.SocketFilter, License: "MIT",
		Instructions: asm.Instructions{asm.LoadMapPtr(asm.R1, m.FD()), asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		return err
	}
	defer prog.Close()
	pinfo, err := prog.Info()
	if err != nil {
		return err
	}
	minfo, err := m.Info()
	if err != nil {
		return err
	}
	pid, _ := pinfo.ID()
	mid, _ := minfo.ID()
	fmt.Printf("%d %d\n", pid, mid)
	// Each "call N" line: call UprobeTarget N times on this thread (see
	// CallUprobeTarget), then say so. The end of stdin ends the process.
	runtime.LockOSThread()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var n int
		if _, err := fmt.Sscanf(in.Text(), "call %d", &n); err != nil {
			return fmt.Errorf("stdin %q: %v", in.Text(), err)
		}
		sum := 0
		for i := range n {
			sum += UprobeTarget(i)
		}
		fmt.Println("called")
		_ = sum
	}
	return in.Err()
}

// startIn starts cmd in the network namespace at path ("" where the test
// is): the child is forked from a thread that entered the namespace, and
// inherits it.
func startIn(cmd *exec.Cmd, path string) error {
	if path == "" {
		return cmd.Start()
	}
	done := make(chan error, 1)
	go func() {
		// The thread enters the namespace and is never unlocked, so the Go
		// runtime retires it when this goroutine ends.
		runtime.LockOSThread()
		ns, err := netns.GetFromPath(path)
		if err != nil {
			done <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			done <- err
			return
		}
		done <- cmd.Start()
	}()
	return <-done
}

// makePodCgroup makes, below root, the cgroups shared (see
// makeSharedCgroups) and in the last of them, own, each in the one before,
// all removed when the test ends (the shared ones when no other test uses
// them); it returns the last.
func makePodCgroup(tb testing.TB, root string, shared, own []string) string {
	tb.Helper()
	// Cleanups run last first: the shared cgroups go after the pod's, and
	// the deepest directory first.
	tb.Cleanup(func() { removeSharedCgroups(root, shared) })
	var dir string
	for try := 0; ; try++ {
		var err error
		if dir, err = makeSharedCgroups(root, shared); err == nil {
			dir = filepath.Join(dir, own[0])
			err = os.Mkdir(dir, 0o755)
		}
		if err == nil {
			break
		}
		// Another test's cleanup removed an empty shared cgroup between
		// this one's making (or finding) it and using it: make it again.
		if !errors.Is(err, fs.ErrNotExist) || try == 100 {
			tb.Fatalf("pod cgroup: %v", err)
		}
	}
	d := dir
	tb.Cleanup(func() { os.Remove(d) })
	for _, e := range own[1:] {
		dir = filepath.Join(dir, e)
		if err := os.Mkdir(dir, 0o755); err != nil {
			tb.Fatalf("pod cgroup: %v", err)
		}
		d := dir
		tb.Cleanup(func() { os.Remove(d) })
	}
	return dir
}

// sharedCgroupMark is the extended attribute that marks a cgroup a test
// made in a place other tests share (a kubelet's, as /kubepods): the last
// test that leaves it removes it, and none removes one without it (a real
// kubelet's).
const sharedCgroupMark = "trusted.bpfd_test"

// makeSharedCgroups makes the cgroups elems, each in the one before, below
// root where they are missing, marked; it returns the last.
func makeSharedCgroups(root string, elems []string) (string, error) {
	dir := root
	for _, e := range elems {
		dir = filepath.Join(dir, e)
		err := os.Mkdir(dir, 0o755)
		switch {
		case err == nil:
			if err := unix.Setxattr(dir, sharedCgroupMark, []byte("1"), 0); err != nil {
				os.Remove(dir)
				return "", fmt.Errorf("shared cgroup %s: %w", dir, err)
			}
		case errors.Is(err, fs.ErrExist):
		default:
			return "", fmt.Errorf("shared cgroup: %w", err)
		}
	}
	return dir, nil
}

// removeSharedCgroups removes the cgroups elems below root, the last
// first, that a test made (marked) and no other still uses (empty).
func removeSharedCgroups(root string, elems []string) {
	for i := len(elems); i > 0; i-- {
		dir := filepath.Join(append([]string{root}, elems[:i]...)...)
		if _, err := unix.Getxattr(dir, sharedCgroupMark, make([]byte, 8)); err != nil {
			return
		}
		if err := unix.Rmdir(dir); err != nil {
			return
		}
	}
}

func randomHex(n int) string { return RandomSuffix(n) }

// randomUUID returns a random version 4 UUID, as pod uids are.
func randomUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
