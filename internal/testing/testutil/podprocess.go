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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
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
}

// StartPodProcess creates, under the cgroup v2 mount and a test directory
// of random name, the cgroup of a container of random id in the pod with
// uid podUID (random when empty) as driver names it, and starts the test binary as a child process that moves
// itself into it, loads a socket filter program and its map and holds them
// until the test ends. The child is served by LeakCheckMain, which the
// package's TestMain must call.
func StartPodProcess(tb testing.TB, driver CgroupDriver, podUID string) *PodProcess {
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
	cmd.Env = append(os.Environ(), podProcessEnv+"="+dir+":"+p.ProgramName)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
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
	line, err := bufio.NewReader(stdout).ReadString('\n')
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
	_, err = io.Copy(io.Discard, os.Stdin)
	return err
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
