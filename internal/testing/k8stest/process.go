package k8stest

import (
	"bytes"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// RunMainEnv, set to 1, makes a command's test binary run the command's
// main instead of its tests; see RunMain.
const RunMainEnv = "BPFD_TEST_RUN_MAIN"

// RunMain starts the test binary itself as the command under test: its
// TestMain must call main() when RunMainEnv is set. The process gets args,
// logs into a buffer shown when the test fails, and is stopped with SIGTERM
// (then killed) when the test ends.
func RunMain(tb testing.TB, args ...string) *exec.Cmd {
	tb.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), RunMainEnv+"=1")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %v: %v", args, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	tb.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if tb.Failed() {
			tb.Logf("output of %v:\n%s", args, out.String())
		}
	})
	return cmd
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
