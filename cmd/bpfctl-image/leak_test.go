package main

import (
	"context"
	"os"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// asMainEnv, when set in the environment, makes the test binary run
// bpfctl-image with its arguments instead of the tests, and then write its
// /proc/self/status to the file the variable names, so that a test can
// measure bpfctl-image as a process of its own (memory_test.go).
const asMainEnv = "BPFCTL_IMAGE_TEST_AS_MAIN"

// TestMain fails the package when a test leaves a file or connection open.
func TestMain(m *testing.M) {
	if status := os.Getenv(asMainEnv); status != "" {
		code := run(context.Background(), append([]string{"bpfctl-image"}, os.Args[1:]...), os.Stdout, os.Stderr)
		if data, err := os.ReadFile("/proc/self/status"); err == nil {
			os.WriteFile(status, data, 0o644)
		}
		os.Exit(code)
	}
	testutil.LeakCheckMain(m)
}
