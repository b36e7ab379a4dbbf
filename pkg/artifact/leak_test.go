package artifact

import (
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// TestMain fails the package when a test leaves a file or connection open.
func TestMain(m *testing.M) { testutil.LeakCheckMain(m) }
