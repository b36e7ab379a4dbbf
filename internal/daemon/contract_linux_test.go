package daemon

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/apicontract"
)

// TestAPIContract holds the daemon to the API contract that the in-memory
// bpfd of the Kubernetes side's tests keeps too (k8stest.Daemon): the same
// requests, as root and as other uids, get the same codes, reasons and
// programs.
func TestAPIContract(t *testing.T) {
	dir := publicDir(t)
	const adminGID = 4243
	td := newTestDaemon(t, func(c *Config) {
		c.Socket.Path = filepath.Join(dir, "bpfd.sock")
		c.Socket.AdminGIDs = []uint32{adminGID}
	})
	if err := os.Chmod(td.cfg.Socket.Path, 0o666); err != nil {
		t.Fatal(err)
	}
	// The contract loads for namespace team-a: the node's policy admits it.
	td.writePolicy(t, policyRule{Name: "contract", Images: []string{"oci:" + filepath.Join(td.images, "contract")}, Keys: []string{td.key.pub}, Namespaces: []string{"team-a"}})
	if _, err := td.d.chain.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	apicontract.Run(t, apicontract.Target{
		Socket:   td.cfg.Socket.Path,
		Artifact: td.image(t, "contract", true, "tracepoint_counter.bpf.o", "xdp_counter.bpf.o"),
		Denied:   td.image(t, "unsigned", false, "tracepoint_counter.bpf.o"),
		AdminGID: adminGID,
	})
}
