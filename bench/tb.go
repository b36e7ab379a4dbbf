package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
)

// setupTB is a testing.TB for the set-up helpers the bench shares with the
// tests (k8stest.StartDaemon): it keeps their cleanups for the group's
// cleanup, and a Fatal ends the helper's goroutine, as testing does, with
// the error returned by call. Errors and logs go to stderr.
type setupTB struct {
	testing.TB // only for its unexported method: every exported one is below

	name string
	dir  string // for TempDir

	mu       sync.Mutex
	failed   bool
	errs     []string
	cleanups []func()
	temps    int
}

func newSetupTB(name, dir string) *setupTB { return &setupTB{name: name, dir: dir} }

// call runs f as a test's goroutine would and returns an error when f
// failed tb (Error, Fatal and the like).
func (tb *setupTB) call(f func(testing.TB)) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(tb)
	}()
	<-done
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.failed {
		return fmt.Errorf("%s: %v", tb.name, tb.errs)
	}
	return nil
}

// cleanup runs the cleanups registered so far, last first.
func (tb *setupTB) cleanup() {
	tb.mu.Lock()
	fs := tb.cleanups
	tb.cleanups = nil
	tb.mu.Unlock()
	for _, f := range slices.Backward(fs) {
		f()
	}
}

func (tb *setupTB) Cleanup(f func()) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.cleanups = append(tb.cleanups, f)
}

func (tb *setupTB) Error(args ...any) { tb.fail(fmt.Sprint(args...)) }
func (tb *setupTB) Errorf(format string, args ...any) {
	tb.fail(fmt.Sprintf(format, args...))
}
func (tb *setupTB) Fatal(args ...any) { tb.Error(args...); tb.FailNow() }
func (tb *setupTB) Fatalf(format string, args ...any) {
	tb.Errorf(format, args...)
	tb.FailNow()
}
func (tb *setupTB) Fail() { tb.fail("") }
func (tb *setupTB) FailNow() {
	tb.Fail()
	runtime.Goexit()
}
func (tb *setupTB) Failed() bool {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.failed
}

func (tb *setupTB) fail(msg string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.failed = true
	if msg != "" {
		tb.errs = append(tb.errs, msg)
	}
}

// Skipping is failing here: a bench's set-up has no test to skip.
func (tb *setupTB) Skip(args ...any) { tb.Fatal(append([]any{"skipped: "}, args...)...) }
func (tb *setupTB) Skipf(format string, args ...any) {
	tb.Fatalf("skipped: "+format, args...)
}
func (tb *setupTB) SkipNow()      { tb.Fatal("skipped") }
func (tb *setupTB) Skipped() bool { return false }

func (tb *setupTB) Log(args ...any) {
	fmt.Fprintf(os.Stderr, "bench: %s: %s\n", tb.name, fmt.Sprint(args...))
}
func (tb *setupTB) Logf(format string, args ...any) {
	tb.Log(fmt.Sprintf(format, args...))
}
func (tb *setupTB) Output() io.Writer        { return os.Stderr }
func (tb *setupTB) Helper()                  {}
func (tb *setupTB) Name() string             { return tb.name }
func (tb *setupTB) Attr(_, _ string)         {}
func (tb *setupTB) Context() context.Context { return context.Background() }

func (tb *setupTB) TempDir() string {
	tb.mu.Lock()
	tb.temps++
	n := tb.temps
	tb.mu.Unlock()
	dir, err := os.MkdirTemp(tb.dir, fmt.Sprintf("%s-%d-", tb.name, n))
	if err != nil {
		tb.Fatalf("temp dir: %v", err)
	}
	return dir // under the bench's scratch directory, removed at the end
}
func (tb *setupTB) ArtifactDir() string { return tb.TempDir() }

// Setenv and Chdir change the whole process, which a bench sharing it
// between groups must not do.
func (tb *setupTB) Setenv(key, _ string) { tb.Fatalf("Setenv %s: not in the bench", key) }
func (tb *setupTB) Chdir(dir string)     { tb.Fatalf("Chdir %s: not in the bench", dir) }
