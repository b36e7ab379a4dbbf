package testutil

import (
	"os"
	"strconv"
	"testing"
)

// SoakEnv names the environment variable that makes the soak tests run
// their long form: `make soak` sets BPFD_SOAK=1. Under a plain `go test`
// (and `make test`) they run a short form that proves the same things on
// fewer iterations.
const SoakEnv = "BPFD_SOAK"

// Soaking reports whether the soak tests run their long form.
func Soaking() bool { return required(SoakEnv) }

// Iterations returns how many times a soak test repeats its work: the
// number in the environment variable env when it is set (for one long run
// of one test), else long under BPFD_SOAK=1, else short. A value of env that
// is not a positive number fails tb.
func Iterations(tb testing.TB, env string, short, long int) int {
	tb.Helper()
	if s := os.Getenv(env); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			tb.Fatalf("%s=%q: want a positive number", env, s)
		}
		return n
	}
	if Soaking() {
		return long
	}
	return short
}
