package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// uprobeCallsEnv tells a test binary started by CallUprobeTarget to call
// UprobeTarget that many times and exit.
const uprobeCallsEnv = "BPFD_TESTUTIL_UPROBE_CALLS"

// UprobeTargetBinary returns the absolute path of the running test binary,
// the file in which to probe UprobeTarget.
func UprobeTargetBinary(tb testing.TB) string {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	return exe
}

// UprobeTargetOffset returns the offset of UprobeTarget's first instruction
// in UprobeTargetBinary's file, where a uprobe on it attaches. Tests use the
// offset because `go test` strips the symbol table from test binaries.
func UprobeTargetOffset(tb testing.TB) uint64 {
	tb.Helper()
	pc := uint64(reflect.ValueOf(UprobeTarget).Pointer())
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		tb.Fatal(err)
	}
	// Each line: start-end perms offset dev inode path.
	for _, line := range strings.Split(string(maps), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		start, end, _ := strings.Cut(f[0], "-")
		lo, err1 := strconv.ParseUint(start, 16, 64)
		hi, err2 := strconv.ParseUint(end, 16, 64)
		off, err3 := strconv.ParseUint(f[2], 16, 64)
		if err1 != nil || err2 != nil || err3 != nil || pc < lo || pc >= hi {
			continue
		}
		return pc - lo + off
	}
	tb.Fatalf("no mapping of this binary holds UprobeTarget at %#x", pc)
	return 0
}

// UprobeTarget is a function for uprobe tests to probe. It is small, never
// inlined and grows no stack, so a uretprobe on it is safe in a Go program.
//
//go:noinline
func UprobeTarget(x int) int { return x + 1 }

// CallUprobeTarget runs the test binary again as a child process that calls
// UprobeTarget n times, so that probes on os.Args[0] see exactly n calls and
// returns of one process. The child is served by LeakCheckMain, which the
// package's TestMain must call.
func CallUprobeTarget(tb testing.TB, n int) {
	tb.Helper()
	cmd := exec.Command(UprobeTargetBinary(tb), "-test.run=^$")
	// A uretprobe's return belongs to the thread that made the call. Go
	// may preempt a goroutine inside UprobeTarget and resume it on another
	// thread, whose return then finds no call (the kernel's trampoline
	// ends in SIGILL): no asynchronous preemption in the child, and the
	// calls stay on one thread (serveUprobeTarget).
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", uprobeCallsEnv, n), "GODEBUG=asyncpreemptoff=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("uprobe target process: %v\n%s", err, out)
	}
}

// serveUprobeTarget is the child side of CallUprobeTarget: when the
// environment asks for calls it makes them and exits the process.
func serveUprobeTarget() {
	v, ok := os.LookupEnv(uprobeCallsEnv)
	if !ok {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q: %v\n", uprobeCallsEnv, v, err)
		os.Exit(2)
	}
	runtime.LockOSThread()
	sum := 0
	for i := range n {
		sum += UprobeTarget(i)
	}
	fmt.Println(sum)
	os.Exit(0)
}
