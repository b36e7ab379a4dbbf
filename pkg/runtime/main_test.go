package runtime_test

import (
	"os"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

// helperEnv makes the test binary, re-executed by a test, act as a helper
// process instead of running tests: see the helpers map.
const helperEnv = "BPFD_RUNTIME_TEST_HELPER"

// helpers are the roles a re-executed test binary can play.
var helpers = map[string]func() int{
	"crash":   crashHelper,
	"migrate": runtime.KilledMigrationHelper,
}

func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		os.Exit(helpers[role]())
	}
	testutil.LeakCheckMain(m)
}
