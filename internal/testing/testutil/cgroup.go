package testutil

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// cgroupUDPEnv tells a test binary started by SendUDPFromCgroup which cgroup
// to join and how many datagrams to send, as "PACKETS:DIR".
const cgroupUDPEnv = "BPFD_TESTUTIL_CGROUP_UDP"

// NewCgroup creates a cgroup under the cgroup v2 hierarchy, removed at the
// end of the test. Without a v2 hierarchy the test skips, or fails when
// BPFD_REQUIRE_PRIVILEGED demands privileged tests run.
func NewCgroup(tb testing.TB) string {
	tb.Helper()
	root, err := cgroupV2Root()
	if err != nil {
		skipOrFail(tb, RequirePrivilegedEnv, "cgroup v2: %v", err)
	}
	dir := filepath.Join(root, "bpfd-test-"+RandomSuffix(8))
	if err := os.Mkdir(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.Remove(dir) })
	return dir
}

// cgroupV2Root returns where the cgroup v2 hierarchy is mounted.
func cgroupV2Root() (string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		// Each line: id parent dev root mountpoint options... - fstype source options.
		f := strings.Fields(line)
		for i, x := range f {
			if x == "-" && i+1 < len(f) && f[i+1] == "cgroup2" {
				return f[4], nil
			}
		}
	}
	return "", fmt.Errorf("no cgroup2 hierarchy mounted")
}

// SendUDPFromCgroup runs the test binary again as a child process that joins
// cgroup dir and sends n datagrams to itself over loopback, receiving each,
// so that cgroup programs on dir see n packets each way. The child is served
// by LeakCheckMain, which the package's TestMain must call.
func SendUDPFromCgroup(tb testing.TB, dir string, n int) {
	tb.Helper()
	cmd := exec.Command(UprobeTargetBinary(tb), "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d:%s", cgroupUDPEnv, n, dir))
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("process in cgroup %s: %v\n%s", dir, err, out)
	}
}

// serveCgroupUDP is the child side of SendUDPFromCgroup: when the
// environment asks for datagrams it sends them and exits the process.
func serveCgroupUDP() {
	v, ok := os.LookupEnv(cgroupUDPEnv)
	if !ok {
		return
	}
	if err := sendUDPFromCgroup(v); err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q: %v\n", cgroupUDPEnv, v, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func sendUDPFromCgroup(spec string) error {
	count, dir, ok := strings.Cut(spec, ":")
	n, err := strconv.Atoi(count)
	if !ok || err != nil {
		return fmt.Errorf("want PACKETS:DIR")
	}
	procs := filepath.Join(dir, "cgroup.procs")
	if err := os.WriteFile(procs, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 64)
	for range n {
		if _, err := c.WriteTo([]byte("bpfd"), c.LocalAddr()); err != nil {
			return err
		}
		if _, _, err := c.ReadFrom(buf); err != nil {
			return err
		}
	}
	return nil
}
