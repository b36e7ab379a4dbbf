package testutil

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// LeakCheckMain runs the package's tests like m.Run and then fails the package
// when it left file descriptors open that were not open before. It also
// serves the helper processes this package starts from the test binary
// (CallUprobeTarget, SendUDPFromCgroup, StartPodProcess, StartUnprivileged). Use it as the body of TestMain in packages that open
// kernel objects:
//
//	func TestMain(m *testing.M) { testutil.LeakCheckMain(m) }
func LeakCheckMain(m *testing.M) { os.Exit(LeakCheckRun(m)) }

// LeakCheckRun is LeakCheckMain returning the exit code instead of exiting,
// for a TestMain with work to do after the tests.
func LeakCheckRun(m *testing.M) int {
	ServeHelpers()
	if err := startNetpoller(); err != nil {
		fmt.Fprintln(os.Stderr, "fd leak check:", err)
		return 1
	}
	before, err := openFDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fd leak check:", err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if leaked := leakedFDs(before); len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: tests leaked %d file descriptors:\n  %s\n", len(leaked), strings.Join(leaked, "\n  "))
			code = 1
		}
	}
	return code
}

// ServeHelpers serves, when the environment asks for one, the helper
// processes this package starts from the test binary (CallUprobeTarget,
// SendUDPFromCgroup, StartPodProcess, StartUnprivileged): it exits the process after. A
// TestMain that does not call LeakCheckMain calls it first.
func ServeHelpers() {
	serveUprobeTarget()
	serveCgroupUDP()
	servePodProcess()
	serveUnprivileged()
}

// startNetpoller makes the Go runtime open its network poller (an epoll and an
// eventfd it keeps for the life of the process) before the first snapshot, so
// a test that first uses a pollable descriptor is not blamed for them.
func startNetpoller() error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start the runtime's poller: %w", err)
	}
	return errors.Join(r.Close(), w.Close())
}

// leakedFDs returns the descriptors open now that were not in before, giving
// closers run by finalizers or goroutines a moment to finish.
func leakedFDs(before map[string]string) []string {
	var leaked []string
	for attempt := 0; attempt < 20; attempt++ {
		now, err := openFDs()
		if err != nil {
			return []string{err.Error()}
		}
		leaked = leaked[:0]
		for fd, target := range now {
			if _, ok := before[fd]; !ok {
				leaked = append(leaked, fd+" -> "+target)
			}
		}
		if len(leaked) == 0 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return leaked
}

// openFDs maps each open descriptor of this process to what it points at.
func openFDs() (map[string]string, error) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("list open file descriptors: %w", err)
	}
	fds := make(map[string]string, len(entries))
	for _, e := range entries {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the descriptor ReadDir itself used, now closed
		}
		fds[e.Name()] = target
	}
	return fds, nil
}
