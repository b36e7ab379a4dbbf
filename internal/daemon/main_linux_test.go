package daemon

import (
	"os"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/apicontract"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// helperEnv makes the test binary, re-executed by a test, play a helper
// process instead of running tests: see helpers.
const helperEnv = "BPFD_DAEMON_TEST_HELPER"

// helpers are the roles a re-executed test binary can play.
var helpers = map[string]func() int{
	"call":      callHelper,
	"mapclient": mapClientHelper,
}

func TestMain(m *testing.M) {
	if apicontract.HelperMain() {
		os.Exit(0)
	}
	if role := os.Getenv(helperEnv); role != "" {
		os.Exit(helpers[role]())
	}
	testutil.LeakCheckMain(m)
}
