package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildCommands builds the named commands of cmd/ as `make build` does and
// returns the directory holding them.
func buildCommands(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"build", "-trimpath", "-o", dir + "/"}
	for _, n := range names {
		args = append(args, "./cmd/"+n)
	}
	cmd := exec.Command(goTool(), args...)
	cmd.Dir = testEnv.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("built %s in %s", strings.Join(names, ", "), time.Since(start).Round(100*time.Millisecond))
	return dir
}

// goTool returns the go command that runs the tests.
func goTool() string {
	if path, err := exec.LookPath("go"); err == nil {
		return path
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// process is a command the test runs; its output is shown when the test
// fails.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	once sync.Once
}

// startProcess runs bin with args and exactly the environment env (plus
// PATH). The caller stops it, e.g. with stopAtEnd.
func startProcess(t *testing.T, name, bin string, args, env []string) *process {
	t.Helper()
	return startProcessAs(t, name, bin, args, env, nil)
}

// startProcessAs is startProcess with the process's user and groups; nil
// keeps the test's (root).
func startProcessAs(t *testing.T, name, bin string, args, env []string, cred *syscall.Credential) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(bin, args...), out: &syncBuffer{}, done: make(chan struct{})}
	if cred != nil {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Logf("started %s (pid %d): %s %s", name, p.cmd.Process.Pid, filepath.Base(bin), strings.Join(args, " "))
	return p
}

// stopAtEnd stops the process when t ends and shows its output if t failed.
func (p *process) stopAtEnd(t *testing.T) {
	t.Cleanup(func() {
		p.stop(t)
		p.logIfFailed(t)
	})
}

// logIfFailed shows the end of the output when t failed.
func (p *process) logIfFailed(t *testing.T) {
	if t.Failed() {
		t.Logf("output of %s (pid %d):\n%s", p.name, p.cmd.Process.Pid, p.tail(150))
	}
}

// stop sends SIGTERM and waits for the process to exit (killing it after
// 20s); it returns the exit status. Stopping again returns the same.
func (p *process) stop(t *testing.T) *os.ProcessState {
	t.Helper()
	p.once.Do(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			t.Errorf("%s still running 20s after SIGTERM; killed", p.name)
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p.cmd.ProcessState
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the last n lines of the output.
func (p *process) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.out.String(), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tempDir returns a directory removed when t ends, whose path, unlike
// t.TempDir's, holds no comma: kubectl splits -f on commas.
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "bpfd-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// shareWith gives the file path to uid, as the kubelet does a token
// mounted into a container running as that user, and lets anyone pass
// through the directories above it.
func shareWith(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Chown(path, uid, -1); err != nil {
		t.Fatal(err)
	}
	passable(t, path)
}

// passable lets anyone pass through every directory above path, up to the
// system's temporary directory, as anyone may reach a volume's mount point
// in a container.
func passable(t *testing.T, path string) {
	t.Helper()
	tmp := filepath.Clean(os.TempDir())
	for dir := filepath.Dir(path); strings.HasPrefix(dir, tmp+"/"); dir = filepath.Dir(dir) {
		st, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, st.Mode().Perm()|0o011); err != nil {
			t.Fatal(err)
		}
	}
}
