package k8stest

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bpfd-dev/bpfd/internal/testing/apicontract"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/agent"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/operator"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

func TestMain(m *testing.M) {
	if apicontract.HelperMain() {
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startOpenDaemon is StartDaemon with its socket open to every uid, as the
// contract calls as other users.
func startOpenDaemon(t *testing.T) *Daemon {
	t.Helper()
	d := StartDaemon(t)
	if err := os.Chmod(filepath.Dir(d.Socket), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d.Socket, 0o666); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDaemonContract holds the in-memory bpfd to the API contract the real
// daemon keeps (internal/daemon's TestAPIContract). It needs root to call
// as other uids.
func TestDaemonContract(t *testing.T) {
	testutil.RequirePrivileged(t)
	d := startOpenDaemon(t)
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

// TestDaemonAgentContract holds the in-memory bpfd to the agent's part of
// the contract (apicontract.RunAgent), with the requests this tree's agent
// makes, as its user: test/upgrade runs the same against the real bpfd of
// this tree and of the previous release.
func TestDaemonAgentContract(t *testing.T) {
	testutil.RequirePrivileged(t)
	d := startOpenDaemon(t)
	const (
		artifact = "registry.example/skew@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		denied   = "registry.example/unsigned:v1"
	)
	d.SetPrograms(artifact, "xdp_counter", "tcx_counter", "tracepoint_counter")
	d.SetInterfaces("eth0", "eth1")
	d.SetAdminGIDs(operator.AgentGID)
	d.Reject(denied, codes.PermissionDenied, bpfdv1.ErrorReason_ERROR_REASON_POLICY_DENIED, "denied by the trust policy: unsigned")

	cfgs := []*v1alpha1.BpfProgramConfig{
		{ObjectMeta: metav1.ObjectMeta{Name: "xdp", UID: "uid-1"}, Spec: v1alpha1.BpfProgramConfigSpec{
			Bytecode: v1alpha1.BytecodeImage{Image: artifact},
			Programs: []v1alpha1.Program{{Name: "xdp_counter", Type: v1alpha1.ProgramTypeXDP, XDP: &v1alpha1.XDPAttach{
				InterfaceSelector: v1alpha1.InterfaceSelector{Interfaces: []string{"eth0", "eth1"}}}}},
		}},
		{ObjectMeta: metav1.ObjectMeta{Name: "tcx-tracepoint", UID: "uid-2"}, Spec: v1alpha1.BpfProgramConfigSpec{
			Bytecode: v1alpha1.BytecodeImage{Image: artifact},
			Programs: []v1alpha1.Program{
				{Name: "tcx_counter", Type: v1alpha1.ProgramTypeTCX, TCX: &v1alpha1.TCXAttach{
					InterfaceSelector: v1alpha1.InterfaceSelector{Interfaces: []string{"eth0"}}, Direction: v1alpha1.Ingress}},
				{Name: "tracepoint_counter", Type: v1alpha1.ProgramTypeTracepoint, Tracepoint: &v1alpha1.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}},
			},
		}},
	}
	var configs []apicontract.AgentConfig
	for _, cfg := range cfgs {
		reqs, err := agent.LoadRequests(cfg, func() (string, error) { return "eth0", nil }, 0)
		if err != nil {
			t.Fatal(err)
		}
		configs = append(configs, apicontract.AgentConfig{
			Name: cfg.Name, Requests: reqs,
			Selector:  map[string]string{agent.MetadataManagedBy: agent.ManagedByAgent, agent.MetadataConfig: cfg.Name},
			ManagedBy: map[string]string{agent.MetadataManagedBy: agent.ManagedByAgent},
		})
	}
	agentUser := apicontract.User{UID: operator.AgentUID, GID: operator.AgentGID, Groups: []uint32{operator.AgentGID}}
	apicontract.RunAgent(t, apicontract.Target{Socket: d.Socket, Denied: denied}, agentUser, configs)
}
