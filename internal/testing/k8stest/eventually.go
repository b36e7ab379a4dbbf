package k8stest

import (
	"testing"
	"time"
)

// Eventually calls check every 50ms until it returns nil, and fails tb with
// check's last error when that has not happened within timeout.
func Eventually(tb testing.TB, timeout time.Duration, check func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
