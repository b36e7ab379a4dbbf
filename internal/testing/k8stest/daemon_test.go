package k8stest

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/bpfd-dev/bpfd/internal/testing/apicontract"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

func TestMain(m *testing.M) {
	if apicontract.HelperMain() {
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestDaemonContract holds the in-memory bpfd to the API contract the real
// daemon keeps (internal/daemon's TestAPIContract). It needs root to call
// as other uids.
func TestDaemonContract(t *testing.T) {
	testutil.RequirePrivileged(t)
	dir, err := os.MkdirTemp("", "bpfd-fake-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := ServeDaemon(filepath.Join(dir, "bpfd.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	if err := os.Chmod(d.Socket, 0o666); err != nil {
		t.Fatal(err)
	}
	const (
		artifact = "registry.example/contract@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		denied   = "registry.example/unsigned:v1"
		adminGID = 4243
	)
	d.SetPrograms(artifact, "tracepoint_counter", "xdp_counter")
	d.SetInterfaces("lo")
	d.SetAdminGIDs(adminGID)
	d.Reject(denied, codes.PermissionDenied, bpfdv1.ErrorReason_ERROR_REASON_POLICY_DENIED, "denied by the trust policy: unsigned")
	apicontract.Run(t, apicontract.Target{Socket: d.Socket, Artifact: artifact, Denied: denied, AdminGID: adminGID})
}
