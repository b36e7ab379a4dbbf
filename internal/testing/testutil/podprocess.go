package testutil

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netns"
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

// StartPodProcess creates, under the cgroup v2 mount and a test directory
// of random name, the cgroup of a container of random id in the pod with
// uid podUID (random when empty) as driver names it, and starts the test binary as a child process that moves
// itself into it, loads a socket filter program and its map and holds them
// until the test ends. The child is served by LeakCheckMain, which the
// package's TestMain must call.
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
	root, err := cgroupV2Root()
	if err != nil {
		skipOrFail(tb, RequirePrivilegedEnv, "cgroup v2: %v", err)
	}
	if podUID == "" {
		podUID = randomUUID()
	}
	p := &PodProcess{PodUID: podUID, ContainerID: randomHex(64), ProgramName: "pod_" + RandomSuffix(8)}
	top := "bpfd-test-" + RandomSuffix(8)
	var elems []string
	switch driver {
	case CgroupDriverSystemd:
		elems = []string{top, "kubepods.slice", "kubepods-burstable.slice",
			"kubepods-burstable-pod" + strings.ReplaceAll(p.PodUID, "-", "_") + ".slice",
			"cri-containerd-" + p.ContainerID + ".scope"}
	case CgroupDriverCgroupfs:
		elems = []string{top, "kubepods", "burstable", "pod" + p.PodUID, p.ContainerID}
	default:
		tb.Fatalf("cgroup driver %q", driver)
	}
	dir := root
	for _, e := range elems {
		dir = filepath.Join(dir, e)
		if err := os.Mkdir(dir, 0o755); err != nil {
			tb.Fatalf("pod cgroup: %v", err)
		}
		d := dir
		// Cleanups run last first: the deepest directory goes first,
		// after the child is gone.
		tb.Cleanup(func() { os.Remove(d) })
	}
	p.Cgroup = "/" + strings.Join(elems, "/")

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
