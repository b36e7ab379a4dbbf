package runtime_test

import (
	"net"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testutil"
)

func TestMain(m *testing.M) {
	// Start Go's network poller before the fd count is taken: its epoll and
	// eventfd descriptors live as long as the process.
	if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		l.Close()
	}
	testutil.LeakCheckMain(m)
}
