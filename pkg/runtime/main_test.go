package runtime_test

import (
	"net"
	"os"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testutil"
)

// helperEnv makes the test binary, re-executed by a test, act as a helper
// process instead of running tests: see the helpers map.
const helperEnv = "BPFD_RUNTIME_TEST_HELPER"

// helpers are the roles a re-executed test binary can play.
var helpers = map[string]func() int{
	"cgroup-udp": cgroupUDPHelper,
	"crash":      crashHelper,
}

func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		os.Exit(helpers[role]())
	}
	// Start Go's network poller before the fd count is taken: its epoll and
	// eventfd descriptors live as long as the process.
	if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		l.Close()
	}
	testutil.LeakCheckMain(m)
}
