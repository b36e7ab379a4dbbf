package agent

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

const image = "registry.example.com/bpfd/counters@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func config(programs ...v1alpha1.Program) *v1alpha1.BpfProgramConfig {
	return &v1alpha1.BpfProgramConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "counters", UID: "uid-1"},
		Spec: v1alpha1.BpfProgramConfigSpec{
			Bytecode: v1alpha1.BytecodeImage{Image: image, PullPolicy: v1alpha1.PullIfNotPresent},
			Programs: programs,
		},
	}
}

func TestLoadRequests(t *testing.T) {
	primary := func() (string, error) { return "ens5", nil }
	noPrimary := func() (string, error) { return "", ErrNoDefaultRoute }
	xdp := func(iface string) *bpfdv1.LoadProgram {
		return &bpfdv1.LoadProgram{Name: "xdp_counter", Type: bpfdv1.ProgramType_PROGRAM_TYPE_XDP, Attach: &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Xdp{Xdp: &bpfdv1.XdpAttach{
			Interface: iface, Priority: 100, ProceedOn: []bpfdv1.XdpAction{bpfdv1.XdpAction_XDP_ACTION_PASS, bpfdv1.XdpAction_XDP_ACTION_DISPATCHER_RETURN}}}}}
	}
	tcx := func(iface string) *bpfdv1.LoadProgram {
		return &bpfdv1.LoadProgram{Name: "tcx_counter", Type: bpfdv1.ProgramType_PROGRAM_TYPE_TCX, Attach: &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Tcx{Tcx: &bpfdv1.TcxAttach{
			Interface: iface, Direction: bpfdv1.Direction_DIRECTION_INGRESS}}}}
	}
	xdpOn := func(ifaces ...string) v1alpha1.Program {
		return v1alpha1.Program{Name: "xdp_counter", Type: "xdp", XDP: &v1alpha1.XDPAttach{
			InterfaceSelector: v1alpha1.InterfaceSelector{Interfaces: ifaces},
			Priority:          100,
			ProceedOn:         []v1alpha1.XDPAction{"Pass", "DispatcherReturn"},
		}}
	}
	// A request as LoadRequests makes it: programs, then its map owner.
	type request struct {
		programs []*bpfdv1.LoadProgram
		mapOwner uint64
	}
	cases := map[string]struct {
		cfg      *v1alpha1.BpfProgramConfig
		primary  func() (string, error)
		mapOwner uint64
		want     []request
		wantErr  error
	}{
		// bpfd takes a program once per request: the second interface is
		// a request of its own, whose map owner the reconciler fills in.
		"xdp on two interfaces": {
			cfg:  config(xdpOn("eth0", "eth1")),
			want: []request{{programs: []*bpfdv1.LoadProgram{xdp("eth0")}}, {programs: []*bpfdv1.LoadProgram{xdp("eth1")}}},
		},
		"two programs, one on three interfaces, with a map owner": {
			cfg: config(xdpOn("eth0", "eth1", "eth2"), v1alpha1.Program{Name: "tcx_counter", Type: "tcx", TCX: &v1alpha1.TCXAttach{
				InterfaceSelector: v1alpha1.InterfaceSelector{Interfaces: []string{"eth0"}}, Direction: v1alpha1.Ingress}}),
			mapOwner: 7,
			want: []request{
				{programs: []*bpfdv1.LoadProgram{xdp("eth0"), tcx("eth0")}, mapOwner: 7},
				{programs: []*bpfdv1.LoadProgram{xdp("eth1")}},
				{programs: []*bpfdv1.LoadProgram{xdp("eth2")}},
			},
		},
		"tc on the primary interface": {
			cfg: config(v1alpha1.Program{Name: "tc_counter", Type: "tc", TC: &v1alpha1.TCAttach{
				InterfaceSelector: v1alpha1.InterfaceSelector{PrimaryNodeInterface: true},
				Direction:         v1alpha1.Egress,
				ProceedOn:         []v1alpha1.TCAction{"OK", "Shot"},
			}}),
			primary: primary,
			want: []request{{programs: []*bpfdv1.LoadProgram{{Name: "tc_counter", Type: bpfdv1.ProgramType_PROGRAM_TYPE_TC, Attach: &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Tc{Tc: &bpfdv1.TcAttach{
				Interface: "ens5", Direction: bpfdv1.Direction_DIRECTION_EGRESS, ProceedOn: []bpfdv1.TcAction{bpfdv1.TcAction_TC_ACTION_OK, bpfdv1.TcAction_TC_ACTION_SHOT}}}}}}}},
		},
		"no primary interface": {
			cfg: config(v1alpha1.Program{Name: "tcx_counter", Type: "tcx", TCX: &v1alpha1.TCXAttach{
				InterfaceSelector: v1alpha1.InterfaceSelector{PrimaryNodeInterface: true}, Direction: v1alpha1.Ingress}}),
			primary: noPrimary,
			wantErr: ErrNoDefaultRoute,
		},
		"probes and map owner": {
			cfg: config(
				v1alpha1.Program{Name: "tp", Type: "tracepoint", Tracepoint: &v1alpha1.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}},
				v1alpha1.Program{Name: "kr", Type: "kretprobe", Kprobe: &v1alpha1.KprobeAttach{Function: "do_unlinkat"}},
				v1alpha1.Program{Name: "up", Type: "uprobe", Uprobe: &v1alpha1.UprobeAttach{Target: "/usr/bin/bash", Function: "readline", Offset: 16}},
				v1alpha1.Program{Name: "fx", Type: "fexit", Fentry: &v1alpha1.FentryAttach{Function: "do_unlinkat"}},
				v1alpha1.Program{Name: "cg", Type: "cgroup", Cgroup: &v1alpha1.CgroupAttach{Path: "/sys/fs/cgroup", AttachType: "InetEgress"}},
			),
			mapOwner: 7,
			want: []request{{mapOwner: 7, programs: []*bpfdv1.LoadProgram{
				{Name: "tp", Type: bpfdv1.ProgramType_PROGRAM_TYPE_TRACEPOINT, Attach: &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Tracepoint{Tracepoint: &bpfdv1.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}}}},
				{Name: "kr", Type: bpfdv1.ProgramType_PROGRAM_TYPE_KRETPROBE, Attach: &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Kprobe{Kprobe: &bpfdv1.KprobeAttach{Function: "do_unlinkat"}}}},
				{Name: "up", Type: bpfdv1.ProgramType_PROGRAM_TYPE_UPROBE, Attach: &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Uprobe{Uprobe: &bpfdv1.UprobeAttach{Target: "/usr/bin/bash", Function: "readline", Offset: 16}}}},
				{Name: "fx", Type: bpfdv1.ProgramType_PROGRAM_TYPE_FEXIT, Attach: &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Fentry{Fentry: &bpfdv1.FentryAttach{Function: "do_unlinkat"}}}},
				{Name: "cg", Type: bpfdv1.ProgramType_PROGRAM_TYPE_CGROUP, Attach: &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Cgroup{Cgroup: &bpfdv1.CgroupAttach{Path: "/sys/fs/cgroup", AttachType: bpfdv1.CgroupAttachType_CGROUP_ATTACH_TYPE_INET_EGRESS}}}},
			}}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if tc.primary == nil {
				tc.primary = func() (string, error) { t.Fatal("primary interface looked up without need"); return "", nil }
			}
			got, err := LoadRequests(tc.cfg, tc.primary, tc.mapOwner)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			hash := got[0].GetMetadata()[MetadataRequestHash]
			if len(hash) != 16 {
				t.Errorf("request hash %q, want 16 hex digits", hash)
			}
			var want []*bpfdv1.LoadRequest
			for _, r := range tc.want {
				want = append(want, &bpfdv1.LoadRequest{
					Bytecode: &bpfdv1.Bytecode{Reference: image, PullPolicy: bpfdv1.PullPolicy_PULL_POLICY_IF_NOT_PRESENT},
					Programs: r.programs,
					Metadata: map[string]string{
						MetadataManagedBy: ManagedByAgent, MetadataConfig: "counters", MetadataConfigUID: "uid-1", MetadataRequestHash: hash,
					},
					MapOwnerId: r.mapOwner,
					Owner:      &bpfdv1.Owner{Config: "counters"},
				})
			}
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("LoadRequests (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLoadRequestHash proves the request hash changes with everything that
// changes what loads, and with nothing else.
func TestLoadRequestHash(t *testing.T) {
	base := func() *v1alpha1.BpfProgramConfig {
		c := config(v1alpha1.Program{Name: "xdp_counter", Type: "xdp", XDP: &v1alpha1.XDPAttach{
			InterfaceSelector: v1alpha1.InterfaceSelector{PrimaryNodeInterface: true}}})
		c.Spec.GlobalData = map[string][]byte{"verdict": {2, 0, 0, 0}, "limit": {1}}
		return c
	}
	hash := func(c *v1alpha1.BpfProgramConfig, primary string, owner uint64) string {
		reqs, err := LoadRequests(c, func() (string, error) { return primary, nil }, owner)
		if err != nil {
			t.Fatal(err)
		}
		return reqs[0].GetMetadata()[MetadataRequestHash]
	}
	h := hash(base(), "eth0", 0)
	for range 20 { // maps iterate in random order
		if got := hash(base(), "eth0", 0); got != h {
			t.Fatalf("hash of the same config changed: %s, then %s", h, got)
		}
	}
	changes := map[string]func(*v1alpha1.BpfProgramConfig) (primary string, owner uint64){
		"image": func(c *v1alpha1.BpfProgramConfig) (string, uint64) { c.Spec.Bytecode.Image += "0"; return "eth0", 0 },
		"pull policy": func(c *v1alpha1.BpfProgramConfig) (string, uint64) {
			c.Spec.Bytecode.PullPolicy = "Always"
			return "eth0", 0
		},
		"global data": func(c *v1alpha1.BpfProgramConfig) (string, uint64) {
			c.Spec.GlobalData["verdict"][0] = 1
			return "eth0", 0
		},
		"priority": func(c *v1alpha1.BpfProgramConfig) (string, uint64) {
			c.Spec.Programs[0].XDP.Priority = 7
			return "eth0", 0
		},
		"primary interface": func(c *v1alpha1.BpfProgramConfig) (string, uint64) { return "eth1", 0 },
		"map owner":         func(c *v1alpha1.BpfProgramConfig) (string, uint64) { return "eth0", 3 },
		"uid":               func(c *v1alpha1.BpfProgramConfig) (string, uint64) { c.UID = "uid-2"; return "eth0", 0 },
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			c := base()
			primary, owner := change(c)
			if hash(c, primary, owner) == h {
				t.Errorf("changing the %s kept the request hash", name)
			}
		})
	}
	t.Run("owner", func(t *testing.T) {
		// The owner follows from the name; an agent of v0.1.0 sent none.
		reqs, err := LoadRequests(base(), func() (string, error) { return "eth0", nil }, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range reqs {
			delete(r.Metadata, MetadataRequestHash) // as it was when hashed
		}
		for _, owner := range []*bpfdv1.Owner{nil, {Config: "other", Namespace: "team-a"}} {
			for _, r := range reqs {
				r.Owner = owner
			}
			if got, err := requestHash(reqs); err != nil || got != h {
				t.Errorf("request hash with owner %v: %s (%v), want %s", owner, got, err, h)
			}
		}
	})
	t.Run("node selector", func(t *testing.T) {
		c := base()
		c.Spec.NodeSelector.MatchLabels = map[string]string{"a": "b"}
		c.Generation = 9
		if hash(c, "eth0", 0) != h {
			t.Error("changing the node selector changed the request hash")
		}
	})
	// The map readers change in place (UpdateOwner), without a reload: the
	// requests carry them, sorted, but the hash does not.
	t.Run("map reader namespaces", func(t *testing.T) {
		c := base()
		c.Spec.MapReaderNamespaces = []string{"web", "apps"}
		if hash(c, "eth0", 0) != h {
			t.Error("changing the map reader namespaces changed the request hash")
		}
		reqs, err := LoadRequests(c, func() (string, error) { return "eth0", nil }, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range reqs {
			if got := r.GetOwner(); got.GetConfig() != c.Name || !slices.Equal(got.GetMapReaderNamespaces(), []string{"apps", "web"}) {
				t.Errorf("owner %v, want config %s with map readers [apps web]", got, c.Name)
			}
		}
	})
}

func TestAttachPoint(t *testing.T) {
	cases := map[string]struct {
		spec *bpfdv1.AttachSpec
		want string
	}{
		"xdp":        {&bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Xdp{Xdp: &bpfdv1.XdpAttach{Interface: "eth0"}}}, "eth0"},
		"tc":         {&bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Tc{Tc: &bpfdv1.TcAttach{Interface: "eth0", Direction: bpfdv1.Direction_DIRECTION_INGRESS}}}, "eth0 ingress"},
		"tcx":        {&bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Tcx{Tcx: &bpfdv1.TcxAttach{Interface: "eth1", Direction: bpfdv1.Direction_DIRECTION_EGRESS}}}, "eth1 egress"},
		"tracepoint": {&bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Tracepoint{Tracepoint: &bpfdv1.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}}}, "syscalls/sys_enter_openat"},
		"kprobe":     {&bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Kprobe{Kprobe: &bpfdv1.KprobeAttach{Function: "do_unlinkat", Offset: 16}}}, "do_unlinkat+0x10"},
		"uprobe":     {&bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Uprobe{Uprobe: &bpfdv1.UprobeAttach{Target: "/usr/bin/bash", Function: "readline"}}}, "/usr/bin/bash:readline"},
		"fentry":     {&bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Fentry{Fentry: &bpfdv1.FentryAttach{Function: "do_unlinkat"}}}, "do_unlinkat"},
		"cgroup":     {&bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Cgroup{Cgroup: &bpfdv1.CgroupAttach{Path: "/sys/fs/cgroup", AttachType: bpfdv1.CgroupAttachType_CGROUP_ATTACH_TYPE_SOCK_OPS}}}, "/sys/fs/cgroup sock_ops"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := AttachPoint(tc.spec); got != tc.want {
				t.Errorf("AttachPoint = %q, want %q", got, tc.want)
			}
		})
	}
}
