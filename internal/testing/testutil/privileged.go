package testutil

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// RequirePrivilegedEnv names the environment variable that turns a skipped
// privileged test into a failed one. `make test` sets it when run as root, so
// CI never passes by skipping.
const RequirePrivilegedEnv = "BPFD_REQUIRE_PRIVILEGED"

// RequirePrivileged skips tb, with the reason, unless the process may load BPF
// programs: root with CAP_BPF (or CAP_SYS_ADMIN on kernels without CAP_BPF)
// and CAP_NET_ADMIN. When BPFD_REQUIRE_PRIVILEGED=1 it fails tb instead.
func RequirePrivileged(tb testing.TB) {
	tb.Helper()
	if err := privileged(); err != nil {
		skipOrFail(tb, RequirePrivilegedEnv, "privileged test: %v", err)
	}
}

func privileged() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("not root (euid %d)", os.Geteuid())
	}
	caps, err := effectiveCaps()
	if err != nil {
		return err
	}
	const capBPF = 39 // CAP_BPF, since Linux 5.8
	if !caps.has(capBPF) && !caps.has(unix.CAP_SYS_ADMIN) {
		return errors.New("missing CAP_BPF")
	}
	if !caps.has(unix.CAP_NET_ADMIN) {
		return errors.New("missing CAP_NET_ADMIN")
	}
	return nil
}

type capSet [2]uint32

func (c capSet) has(capability int) bool {
	return c[capability/32]&(1<<(capability%32)) != 0
}

func effectiveCaps() (capSet, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return capSet{}, fmt.Errorf("capget: %w", err)
	}
	return capSet{data[0].Effective, data[1].Effective}, nil
}

// skipOrFail skips tb with the formatted reason, or fails it when the
// environment variable env demands the test run.
func skipOrFail(tb testing.TB, env, format string, args ...any) {
	tb.Helper()
	reason := fmt.Sprintf(format, args...)
	if required(env) {
		tb.Fatalf("%s (required by %s=%s)", reason, env, os.Getenv(env))
	}
	tb.Skip(reason)
}

// required reports whether the environment variable env is set to a value
// other than "" or "0".
func required(env string) bool {
	v := os.Getenv(env)
	return v != "" && v != "0"
}
