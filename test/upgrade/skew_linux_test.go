package upgrade

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bpfd-dev/bpfd/internal/testing/apicontract"
	"github.com/bpfd-dev/bpfd/internal/testing/release"
	"github.com/bpfd-dev/bpfd/internal/testing/testimage"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/agent"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/operator"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// skewConfigs are BpfProgramConfigs of every shape the agent turns into
// requests differently: an XDP program on two interfaces (a second request
// sharing the first's maps), and a TCX and a tracepoint program from one
// artifact, with a pull policy.
func skewConfigs(image string, ifaces []string) []*v1alpha1.BpfProgramConfig {
	return []*v1alpha1.BpfProgramConfig{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "skew-xdp", UID: types.UID("6a1f3c2e-0000-4000-8000-000000000001")},
			Spec: v1alpha1.BpfProgramConfigSpec{
				Bytecode: v1alpha1.BytecodeImage{Image: image},
				Programs: []v1alpha1.Program{{Name: "xdp_counter", Type: v1alpha1.ProgramTypeXDP, XDP: &v1alpha1.XDPAttach{
					InterfaceSelector: v1alpha1.InterfaceSelector{Interfaces: ifaces},
					Priority:          40,
					ProceedOn:         []v1alpha1.XDPAction{"Pass", "DispatcherReturn"},
				}}},
			},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "skew-tcx-tracepoint", UID: types.UID("6a1f3c2e-0000-4000-8000-000000000002")},
			Spec: v1alpha1.BpfProgramConfigSpec{
				Bytecode: v1alpha1.BytecodeImage{Image: image, PullPolicy: v1alpha1.PullIfNotPresent},
				Programs: []v1alpha1.Program{
					{Name: "tcx_counter", Type: v1alpha1.ProgramTypeTCX, TCX: &v1alpha1.TCXAttach{
						InterfaceSelector: v1alpha1.InterfaceSelector{Interfaces: ifaces[:1]}, Direction: v1alpha1.Ingress, Priority: 7,
					}},
					{Name: "tracepoint_counter", Type: v1alpha1.ProgramTypeTracepoint, Tracepoint: &v1alpha1.TracepointAttach{
						Tracepoint: "syscalls/sys_enter_openat",
					}},
				},
			},
		},
	}
}

// agentVersion is one version of bpfd-agent as bpfd sees it: who it runs
// as and the requests it makes for configs.
type agentVersion struct {
	name     string
	user     apicontract.User
	requests func(t *testing.T, cfgs []*v1alpha1.BpfProgramConfig) [][]*pb.LoadRequest
}

// previousAgent is the previous release's agent: its DaemonSet ran it as
// root; its requests come from its own agent.LoadRequests, built from the
// release's source.
func previousAgent() agentVersion {
	return agentVersion{name: "agent " + release.Previous, user: apicontract.User{}, requests: previousRequests}
}

// currentAgent is this tree's agent, run as the DaemonSet runs it: as
// AgentUID, a member of bpfd's admin group AgentGID.
func currentAgent() agentVersion {
	return agentVersion{
		name: "agent of this tree",
		user: apicontract.User{UID: operator.AgentUID, GID: operator.AgentGID, Groups: []uint32{operator.AgentGID}},
		requests: func(t *testing.T, cfgs []*v1alpha1.BpfProgramConfig) [][]*pb.LoadRequest {
			var out [][]*pb.LoadRequest
			for _, cfg := range cfgs {
				reqs, err := agent.LoadRequests(cfg, func() (string, error) { return "", nil }, 0)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, reqs)
			}
			return out
		},
	}
}

// previousRequests runs the previous release's agent.LoadRequests on cfgs,
// through a small program built with that release's source.
func previousRequests(t *testing.T, cfgs []*v1alpha1.BpfProgramConfig) [][]*pb.LoadRequest {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "agentrequests", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	dir := release.BuildWith(t, release.Previous, map[string][]byte{"hack/agentrequests/main.go": src}, "./hack/agentrequests")
	var in bytes.Buffer
	for _, cfg := range cfgs {
		b, err := json.Marshal(map[string]any{"config": cfg})
		if err != nil {
			t.Fatal(err)
		}
		in.Write(append(b, '\n'))
	}
	cmd := exec.Command(filepath.Join(dir, "agentrequests"))
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("agentrequests of %s: %v\n%s", release.Previous, err, stderr.String())
	}
	var all [][]*pb.LoadRequest
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var o struct {
			Requests []json.RawMessage `json:"requests"`
			Error    string            `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Fatal(err)
		}
		if o.Error != "" {
			t.Fatalf("the previous agent's LoadRequests: %s", o.Error)
		}
		var reqs []*pb.LoadRequest
		for _, r := range o.Requests {
			req := &pb.LoadRequest{}
			// Strict: a field this tree's API does not know would fail here.
			if err := protojson.Unmarshal(r, req); err != nil {
				t.Fatalf("a request of the previous agent: %v\n%s", err, r)
			}
			reqs = append(reqs, req)
		}
		all = append(all, reqs)
	}
	if len(all) != len(cfgs) {
		t.Fatalf("the previous agent made requests for %d configs, want %d", len(all), len(cfgs))
	}
	return all
}

// TestAgentDaemonSkew runs each version of the agent, the previous
// release's and this tree's, against each version of bpfd, through the
// agent's part of the API contract (apicontract.RunAgent): an agent one
// release older or newer than bpfd loads, finds, is refused and unloads as
// with its own.
func TestAgentDaemonSkew(t *testing.T) {
	testutil.RequirePrivileged(t)
	testutil.RequireKernelFeature(t, testutil.FeatureTCX)
	bins := buildVersions(t)
	// Each bpfd with the flags its release's DaemonSet gives it: this
	// tree's makes the agent's group an admin group.
	daemons := []struct {
		name, dir string
		flags     []string
	}{
		{"bpfd " + release.Previous, bins.old, nil},
		{"bpfd of this tree", bins.cur, []string{fmt.Sprintf("--socket-admin-gid=%d", operator.AgentGID)}},
	}
	for _, d := range daemons {
		for _, a := range []agentVersion{previousAgent(), currentAgent()} {
			t.Run(a.name+" with "+d.name, func(t *testing.T) {
				n := newNode(t)
				artifact := n.image(t, "skew", "xdp_counter.bpf.o", "tc_counter.bpf.o", "tracepoint_counter.bpf.o")
				denied := unsignedImage(t, n)
				v1, v2 := testutil.NewVethPair(t), testutil.NewVethPair(t)
				b := n.start(t, d.dir, d.flags...)
				// Every uid may connect; bpfd decides what each may do.
				if err := os.Chmod(n.socket, 0o666); err != nil {
					t.Fatal(err)
				}
				passable(t, n.socket)
				configs := skewConfigs(artifact, []string{v1.Host, v2.Host})
				reqs := a.requests(t, configs)
				var cfgs []apicontract.AgentConfig
				for i, cfg := range configs {
					cfgs = append(cfgs, apicontract.AgentConfig{
						Name:      cfg.Name,
						Requests:  reqs[i],
						Selector:  map[string]string{agent.MetadataManagedBy: agent.ManagedByAgent, agent.MetadataConfig: cfg.Name},
						ManagedBy: map[string]string{agent.MetadataManagedBy: agent.ManagedByAgent},
					})
				}
				apicontract.RunAgent(t, apicontract.Target{Socket: n.socket, Denied: denied}, a.user, cfgs)
				b.stop(t, syscall.SIGTERM)
			})
		}
	}
}

// TestAgentUpgradeKeepsPrograms checks that this tree's agent finds the
// programs the previous release's agent loaded current, so that upgrading
// the agent reloads nothing: for every config, both make the same
// requests, but for what the previous release's API did not have (the
// owner), and carry the same request hash, which the agent compares.
func TestAgentUpgradeKeepsPrograms(t *testing.T) {
	cfgs := skewConfigs("registry.example.com/bpfd/skew@sha256:"+strings.Repeat("ab", 32), []string{"eth0", "eth1"})
	prev := previousRequests(t, cfgs)
	cur := currentAgent().requests(t, cfgs)
	for i, cfg := range cfgs {
		if got, want := cur[i][0].GetMetadata()[agent.MetadataRequestHash], prev[i][0].GetMetadata()[agent.MetadataRequestHash]; got != want {
			t.Errorf("%s: request hash %s, the previous agent's %s: upgrading the agent reloads the config's programs", cfg.Name, got, want)
		}
		var withoutOwner []*pb.LoadRequest
		for _, r := range cur[i] {
			r = proto.CloneOf(r)
			r.Owner = nil
			withoutOwner = append(withoutOwner, r)
		}
		if diff := cmp.Diff(prev[i], withoutOwner, protocmp.Transform()); diff != "" {
			t.Errorf("%s: requests (-previous agent +this agent, without owner):\n%s", cfg.Name, diff)
		}
	}
}

// unsignedImage returns an artifact under the node's images that no key
// signed: the node's policy denies it.
func unsignedImage(t *testing.T, n *node) string {
	t.Helper()
	ref, err := testimage.Build(t.Context(), "oci:"+filepath.Join(n.images, "unsigned")+":v1", filepath.Join(bytecodeDir, "xdp_counter.bpf.o"))
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// passable lets anyone pass through every directory above path, up to
// the system's temporary directory.
func passable(t *testing.T, path string) {
	t.Helper()
	tmp := filepath.Clean(os.TempDir())
	for dir := filepath.Dir(path); strings.HasPrefix(dir, tmp+"/"); dir = filepath.Dir(dir) {
		st, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, st.Mode().Perm()|0o011); err != nil {
			t.Fatal(err)
		}
	}
}
