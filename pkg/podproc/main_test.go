package podproc_test

import (
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

func TestMain(m *testing.M) {
	serveScanInCgroupns()
	testutil.LeakCheckMain(m)
}
