package testutil

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Nobody is the uid and gid unprivileged helper processes run as.
const Nobody = 65534

// unprivilegedEnv names the helper a test binary started by
// StartUnprivileged runs instead of its tests.
const unprivilegedEnv = "BPFD_TESTUTIL_UNPRIVILEGED"

// unprivilegedHelpers are the helpers registered with RegisterUnprivileged.
var unprivilegedHelpers = map[string]func(args []string, in *bufio.Scanner, out io.Writer) error{}

// RegisterUnprivileged registers a helper that StartUnprivileged runs in a
// child process of the test binary. Register from an init function of the
// test package; its TestMain must call LeakCheckMain, which serves the
// child. The helper gets the arguments, the lines the test sends and its
// standard output; an error fails the child.
func RegisterUnprivileged(name string, fn func(args []string, in *bufio.Scanner, out io.Writer) error) {
	unprivilegedHelpers[name] = fn
}

// UnprivilegedProcess is a helper running as uid and gid 65534 with no
// capabilities.
type UnprivilegedProcess struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Scanner
	stderr *syncBuf
	done   chan error
}

// StartUnprivileged runs the registered helper name in a child process of
// the test binary as uid and gid 65534 (nobody) with the supplementary
// groups given, no capabilities (inheritable, permitted, effective and
// ambient sets empty) and no file of the test's open. The test binary is
// copied to a directory every user may read. The child checks its
// credentials before it runs the helper and fails otherwise. It is killed,
// if still running, when the test ends.
func StartUnprivileged(tb testing.TB, groups []uint32, name string, args ...string) *UnprivilegedProcess {
	tb.Helper()
	RequirePrivileged(tb)
	if _, ok := unprivilegedHelpers[name]; !ok {
		tb.Fatalf("no unprivileged helper %q is registered", name)
	}
	cmd := exec.Command(worldReadableSelf(tb), "-test.run=^$")
	spec, err := json.Marshal(append([]string{name}, args...))
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Env = append(os.Environ(), unprivilegedEnv+"="+string(spec))
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential:  &syscall.Credential{Uid: Nobody, Gid: Nobody, Groups: append([]uint32{}, groups...)},
		AmbientCaps: []uintptr{},
		// No Pdeathsig: it fires when the thread that forked exits, and
		// tests lock threads that then exit (SendUDPFromPeer); the
		// cleanup below kills the child.
	}
	p := &UnprivilegedProcess{cmd: cmd, stderr: &syncBuf{}, done: make(chan error, 1)}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		tb.Fatal(err)
	}
	// Not cmd.StdoutPipe: Wait, which reaps the helper as soon as it exits,
	// would close it before all the helper wrote was read.
	out, w, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	defer w.Close()
	p.stdout = bufio.NewScanner(out)
	cmd.Stdout = w
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		out.Close()
		tb.Fatalf("start unprivileged helper %s: %v", name, err)
	}
	go func() { p.done <- cmd.Wait() }()
	tb.Cleanup(func() {
		p.stdin.Close()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-p.done
		}
		out.Close()
	})
	return p
}

// Ask sends line to the helper and returns the line it answers; the test
// fails when the helper exits instead, with its error output.
func (p *UnprivilegedProcess) Ask(tb testing.TB, line string) string {
	tb.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		tb.Fatalf("unprivileged helper: write: %v (stderr: %s)", err, p.Stderr())
	}
	if !p.stdout.Scan() {
		err := <-p.done
		p.done <- err
		tb.Fatalf("unprivileged helper exited (%v) instead of answering %q: %s", err, line, p.Stderr())
	}
	return p.stdout.Text()
}

// Wait closes the helper's input and waits for it to exit, returning its
// error output and exit error.
func (p *UnprivilegedProcess) Wait() (stderr string, err error) {
	p.stdin.Close()
	err = <-p.done
	p.done <- err
	return p.Stderr(), err
}

// Stderr returns what the helper wrote to its standard error so far.
func (p *UnprivilegedProcess) Stderr() string { return p.stderr.String() }

// RunUnprivileged runs the helper to its end with no input, like
// StartUnprivileged, and returns its output and exit error.
func RunUnprivileged(tb testing.TB, groups []uint32, name string, args ...string) (stdout, stderr string, err error) {
	tb.Helper()
	p := StartUnprivileged(tb, groups, name, args...)
	p.stdin.Close()
	var lines []string
	for p.stdout.Scan() {
		lines = append(lines, p.stdout.Text())
	}
	stderr, err = p.Wait()
	return strings.Join(lines, "\n"), stderr, err
}

// worldReadableSelf returns a copy of the running test binary in a
// directory every user may search, removed when tb ends: go test builds in
// a directory only its user may open.
func worldReadableSelf(tb testing.TB) string {
	tb.Helper()
	self, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "bpfd-unpriv-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(self))
	in, err := os.Open(self)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	if err := copyExecutable(dst, in); err != nil {
		tb.Fatal(err)
	}
	return dst
}

// copyExecutable writes an executable file dst from src. No process forks
// while dst is open for writing: a child forked meanwhile (by any
// goroutine) would hold the descriptor until it execs, and the file could
// not be executed until then (ETXTBSY).
func copyExecutable(dst string, src io.Reader) error {
	syscall.ForkLock.Lock()
	defer syscall.ForkLock.Unlock()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, src); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// serveUnprivileged is the child side of StartUnprivileged: when the
// environment names a helper it checks that it runs unprivileged, runs the
// helper and exits the process.
func serveUnprivileged() {
	v, ok := os.LookupEnv(unprivilegedEnv)
	if !ok {
		return
	}
	os.Unsetenv(unprivilegedEnv)
	var fields []string
	if err := json.Unmarshal([]byte(v), &fields); err != nil || len(fields) == 0 {
		fmt.Fprintf(os.Stderr, "%s=%q: want a JSON list of the helper's name and arguments\n", unprivilegedEnv, v)
		os.Exit(2)
	}
	name, args := fields[0], fields[1:]
	fn, ok := unprivilegedHelpers[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "no unprivileged helper %q\n", name)
		os.Exit(2)
	}
	if err := checkUnprivileged(); err != nil {
		fmt.Fprintf(os.Stderr, "unprivileged helper %s: %v\n", name, err)
		os.Exit(2)
	}
	if err := fn(args, bufio.NewScanner(os.Stdin), os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "unprivileged helper %s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// checkUnprivileged fails unless this process runs as uid and gid 65534
// with empty inheritable, permitted, effective and ambient capability sets.
func checkUnprivileged() error {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	want := map[string]string{
		"Uid:":    fmt.Sprintf("%d\t%d\t%d\t%d", Nobody, Nobody, Nobody, Nobody),
		"Gid:":    fmt.Sprintf("%d\t%d\t%d\t%d", Nobody, Nobody, Nobody, Nobody),
		"CapInh:": "0000000000000000",
		"CapPrm:": "0000000000000000",
		"CapEff:": "0000000000000000",
		"CapAmb:": "0000000000000000",
	}
	for _, line := range strings.Split(string(status), "\n") {
		key, value, _ := strings.Cut(line, "\t")
		if w, ok := want[key]; ok {
			if strings.TrimSpace(value) != w {
				return fmt.Errorf("/proc/self/status %s %q, want %q", key, strings.TrimSpace(value), w)
			}
			delete(want, key)
		}
	}
	if len(want) > 0 {
		return fmt.Errorf("/proc/self/status lacks %v", want)
	}
	return nil
}

// syncBuf is a buffer written by one goroutine and read by another.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// unprivilegedBPFSysctl is the sysctl kernel.unprivileged_bpf_disabled.
const unprivilegedBPFSysctl = "/proc/sys/kernel/unprivileged_bpf_disabled"

// AllowUnprivilegedMapAccess makes this kernel let an unprivileged process
// open a pinned map, for the length of the test. Kernels from 5.19 check
// kernel.unprivileged_bpf_disabled only when a map is created or a program
// loaded, and are left alone; older kernels refuse every bpf() command to
// such a process while it is set, so it is set to 0 and restored at the
// end. When it is 1 (which holds until reboot) the test skips, or fails
// under BPFD_REQUIRE_PRIVILEGED.
func AllowUnprivilegedMapAccess(tb testing.TB) {
	tb.Helper()
	RequirePrivileged(tb)
	var major, minor int
	if _, err := fmt.Sscanf(kernelRelease(), "%d.%d", &major, &minor); err != nil {
		tb.Fatalf("kernel release %q: %v", kernelRelease(), err)
	}
	if major > 5 || major == 5 && minor >= 19 {
		return
	}
	b, err := os.ReadFile(unprivilegedBPFSysctl)
	if err != nil {
		tb.Fatal(err)
	}
	old := strings.TrimSpace(string(b))
	switch old {
	case "0":
		return
	case "1":
		skipOrFail(tb, RequirePrivilegedEnv, "kernel %s refuses bpf() to unprivileged processes while kernel.unprivileged_bpf_disabled=1, which cannot change until reboot", kernelRelease())
	}
	if err := os.WriteFile(unprivilegedBPFSysctl, []byte("0"), 0o644); err != nil {
		tb.Fatalf("set kernel.unprivileged_bpf_disabled=0: %v", err)
	}
	tb.Logf("kernel %s: kernel.unprivileged_bpf_disabled=0 for this test (was %s)", kernelRelease(), old)
	tb.Cleanup(func() {
		if err := os.WriteFile(unprivilegedBPFSysctl, []byte(old), 0o644); err != nil {
			tb.Errorf("restore kernel.unprivileged_bpf_disabled=%s: %v", old, err)
		}
	})
}
