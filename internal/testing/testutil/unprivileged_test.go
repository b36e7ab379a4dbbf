package testutil

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
)

func TestMain(m *testing.M) {
	ServeHelpers()
	os.Exit(m.Run())
}

func init() {
	RegisterUnprivileged("testutil-echo", func(args []string, _ *bufio.Scanner, out io.Writer) error {
		_, err := fmt.Fprintln(out, strings.Join(args, " "))
		return err
	})
}

// TestRunUnprivilegedReadsAllOutput runs many helpers that print a line and
// exit at once: each run returns the line, however soon the helper exits
// after writing it (the output is read to its end before the helper is
// reaped, not raced by the reaping).
func TestRunUnprivilegedReadsAllOutput(t *testing.T) {
	const runs = 8
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() {
			want := fmt.Sprintf("run %d", i)
			out, stderr, err := RunUnprivileged(t, nil, "testutil-echo", want)
			if err != nil || out != want {
				t.Errorf("run %d: output %q, %v (stderr %q); want %q", i, out, err, stderr, want)
			}
		})
	}
	wg.Wait()
}

// TestUnprivilegedOutputOutlivesHelper reads a helper's output after the
// helper exited and was reaped: it is still there.
func TestUnprivilegedOutputOutlivesHelper(t *testing.T) {
	p := StartUnprivileged(t, nil, "testutil-echo", "still here")
	if stderr, err := p.Wait(); err != nil {
		t.Fatalf("helper: %v: %s", err, stderr)
	}
	if !p.stdout.Scan() || p.stdout.Text() != "still here" {
		t.Fatalf("output after the helper exited: %q, %v; want %q", p.stdout.Text(), p.stdout.Err(), "still here")
	}
}
