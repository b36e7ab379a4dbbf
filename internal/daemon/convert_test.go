package daemon

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bpfd-dev/bpfd/internal/supplychain"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

func TestLoadRequestConversion(t *testing.T) {
	who := runtime.Requester{UID: 1000, GID: 100, PID: 42}
	spec := func(s any) *pb.AttachSpec {
		switch s := s.(type) {
		case *pb.XdpAttach:
			return &pb.AttachSpec{Spec: &pb.AttachSpec_Xdp{Xdp: s}}
		case *pb.TcAttach:
			return &pb.AttachSpec{Spec: &pb.AttachSpec_Tc{Tc: s}}
		case *pb.TcxAttach:
			return &pb.AttachSpec{Spec: &pb.AttachSpec_Tcx{Tcx: s}}
		case *pb.KprobeAttach:
			return &pb.AttachSpec{Spec: &pb.AttachSpec_Kprobe{Kprobe: s}}
		case *pb.UprobeAttach:
			return &pb.AttachSpec{Spec: &pb.AttachSpec_Uprobe{Uprobe: s}}
		case *pb.FentryAttach:
			return &pb.AttachSpec{Spec: &pb.AttachSpec_Fentry{Fentry: s}}
		case *pb.CgroupAttach:
			return &pb.AttachSpec{Spec: &pb.AttachSpec_Cgroup{Cgroup: s}}
		case *pb.TracepointAttach:
			return &pb.AttachSpec{Spec: &pb.AttachSpec_Tracepoint{Tracepoint: s}}
		}
		return nil
	}
	req := func(progs ...*pb.LoadProgram) *pb.LoadRequest {
		return &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: "oci:/x:v1"}, Programs: progs}
	}
	prog := func(name string, typ pb.ProgramType, a *pb.AttachSpec) *pb.LoadProgram {
		return &pb.LoadProgram{Name: name, Type: typ, Attach: a}
	}
	cases := map[string]struct {
		in       *pb.LoadRequest
		want     runtime.LoadRequest
		wantPull supplychain.PullPolicy
		wantErr  string
	}{
		"every spec": {
			in: &pb.LoadRequest{
				Bytecode: &pb.Bytecode{Reference: "oci:/x:v1", PullPolicy: pb.PullPolicy_PULL_POLICY_ALWAYS},
				Programs: []*pb.LoadProgram{
					prog("a", pb.ProgramType_PROGRAM_TYPE_XDP, spec(&pb.XdpAttach{Interface: "eth0", Netns: "/run/netns/n", Mode: pb.XdpMode_XDP_MODE_GENERIC, Priority: 10,
						ProceedOn: []pb.XdpAction{pb.XdpAction_XDP_ACTION_PASS, pb.XdpAction_XDP_ACTION_DROP}})),
					prog("b", pb.ProgramType_PROGRAM_TYPE_TC, spec(&pb.TcAttach{Interface: "eth0", Direction: pb.Direction_DIRECTION_EGRESS, Priority: 5,
						ProceedOn: []pb.TcAction{pb.TcAction_TC_ACTION_DISPATCHER_RETURN}})),
					prog("c", pb.ProgramType_PROGRAM_TYPE_TCX, spec(&pb.TcxAttach{Interface: "eth0", Direction: pb.Direction_DIRECTION_INGRESS})),
					prog("d", pb.ProgramType_PROGRAM_TYPE_KRETPROBE, spec(&pb.KprobeAttach{Function: "f"})),
					prog("e", pb.ProgramType_PROGRAM_TYPE_URETPROBE, spec(&pb.UprobeAttach{Target: "/bin/x", Function: "main", Offset: 4, Pid: 7})),
					prog("f", pb.ProgramType_PROGRAM_TYPE_FEXIT, spec(&pb.FentryAttach{Function: "g"})),
					prog("g", pb.ProgramType_PROGRAM_TYPE_CGROUP, spec(&pb.CgroupAttach{Path: "/sys/fs/cgroup/x", AttachType: pb.CgroupAttachType_CGROUP_ATTACH_TYPE_SOCK_OPS})),
					prog("h", pb.ProgramType_PROGRAM_TYPE_TRACEPOINT, spec(&pb.TracepointAttach{Tracepoint: "a/b"})),
				},
				GlobalData: map[string][]byte{"v": {1, 2, 3, 4}},
				Metadata:   map[string]string{"app": "web"},
				MapOwnerId: 9,
				Owner:      &pb.Owner{Config: "web", Namespace: "team-a", MapReaderNamespaces: []string{"obs"}},
			},
			wantPull: supplychain.PullAlways,
			want: runtime.LoadRequest{
				Programs: []runtime.ProgramRequest{
					{Name: "a", Kind: progtype.XDP, Attach: runtime.XDPAttach{Interface: "eth0", Netns: "/run/netns/n", Mode: runtime.XDPModeGeneric, Priority: 10, ProceedOn: []string{"pass", "drop"}}},
					{Name: "b", Kind: progtype.TC, Attach: runtime.TCAttach{Interface: "eth0", Direction: runtime.Egress, Priority: 5, ProceedOn: []string{"dispatcher_return"}}},
					{Name: "c", Kind: progtype.TCX, Attach: runtime.TCXAttach{Interface: "eth0", Direction: runtime.Ingress}},
					{Name: "d", Kind: progtype.Kretprobe, Attach: runtime.KprobeAttach{Function: "f"}},
					{Name: "e", Kind: progtype.Uretprobe, Attach: runtime.UprobeAttach{Target: "/bin/x", Function: "main", Offset: 4, PID: 7}},
					{Name: "f", Kind: progtype.Fexit, Attach: runtime.FentryAttach{Function: "g"}},
					{Name: "g", Kind: progtype.Cgroup, Attach: runtime.CgroupAttach{Path: "/sys/fs/cgroup/x", AttachType: runtime.CgroupSockOps}},
					{Name: "h", Kind: progtype.Tracepoint, Attach: runtime.TracepointAttach{Tracepoint: "a/b"}},
				},
				Globals:    map[string][]byte{"v": {1, 2, 3, 4}},
				Metadata:   map[string]string{"app": "web"},
				MapOwnerID: 9,
				Requester:  who,
				Owner:      runtime.Owner{Config: "web", Namespace: "team-a", MapReaderNamespaces: []string{"obs"}},
			},
		},
		"default pull policy": {
			in:       req(prog("h", pb.ProgramType_PROGRAM_TYPE_TRACEPOINT, spec(&pb.TracepointAttach{Tracepoint: "a/b"}))),
			wantPull: supplychain.PullNever,
			want: runtime.LoadRequest{Requester: who,
				Programs: []runtime.ProgramRequest{{Name: "h", Kind: progtype.Tracepoint, Attach: runtime.TracepointAttach{Tracepoint: "a/b"}}}},
		},
		"no bytecode":         {in: &pb.LoadRequest{}, wantErr: "bytecode: missing"},
		"long reference":      {in: &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: strings.Repeat("x", 5000)}}, wantErr: "bytecode.reference: 5000 bytes, at most 4096"},
		"unknown pull policy": {in: &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: "x", PullPolicy: 9}}, wantErr: "bytecode.pull_policy: unknown value 9"},
		"too many programs":   {in: req(make([]*pb.LoadProgram, 65)...), wantErr: "programs: 65 programs, at most 64"},
		"unknown type":        {in: req(prog("a", 99, nil)), wantErr: "programs[0] (a).type: unknown value 99"},
		"kprobe spec for a fentry": {in: req(prog("a", pb.ProgramType_PROGRAM_TYPE_FENTRY, spec(&pb.KprobeAttach{Function: "f"}))),
			wantErr: "programs[0] (a).attach: a kprobe spec does not attach fentry programs (want fentry)"},
		"unknown proceed-on value": {in: req(prog("a", pb.ProgramType_PROGRAM_TYPE_TC, spec(&pb.TcAttach{Interface: "x", Direction: 1, ProceedOn: []pb.TcAction{1, 99}}))),
			wantErr: "programs[0] (a).attach.tc.proceed_on[1]: unknown or unspecified value 99"},
		"unspecified proceed-on value": {in: req(prog("a", pb.ProgramType_PROGRAM_TYPE_XDP, spec(&pb.XdpAttach{Interface: "x", ProceedOn: []pb.XdpAction{0}}))),
			wantErr: "programs[0] (a).attach.xdp.proceed_on[0]: unknown or unspecified value 0"},
		"unknown xdp mode": {in: req(prog("a", pb.ProgramType_PROGRAM_TYPE_XDP, spec(&pb.XdpAttach{Interface: "x", Mode: 42}))),
			wantErr: "programs[0] (a).attach.xdp.mode: unknown value 42"},
		"unknown direction": {in: req(prog("a", pb.ProgramType_PROGRAM_TYPE_TCX, spec(&pb.TcxAttach{Interface: "x", Direction: 3}))),
			wantErr: "programs[0] (a).attach.tcx.direction: unknown value 3"},
		"unknown cgroup attach type": {in: req(prog("a", pb.ProgramType_PROGRAM_TYPE_CGROUP, spec(&pb.CgroupAttach{Path: "/x", AttachType: 77}))),
			wantErr: "programs[0] (a).attach.cgroup.attach_type: unknown value 77"},
		"empty global name": {in: &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: "x"}, Programs: []*pb.LoadProgram{prog("h", pb.ProgramType_PROGRAM_TYPE_TRACEPOINT, spec(&pb.TracepointAttach{Tracepoint: "a/b"}))}, GlobalData: map[string][]byte{"": {1}}},
			wantErr: "global_data: empty variable name"},
		"empty global value": {in: &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: "x"}, Programs: []*pb.LoadProgram{prog("h", pb.ProgramType_PROGRAM_TYPE_TRACEPOINT, spec(&pb.TracepointAttach{Tracepoint: "a/b"}))}, GlobalData: map[string][]byte{"v": {}}},
			wantErr: "global_data[v]: empty value"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, ref, pull, err := loadRequest(tc.in, supplychain.PullNever, who)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, runtime.ErrInvalid) {
					t.Fatalf("error %v, want %q (invalid)", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if ref != "oci:/x:v1" || pull != tc.wantPull {
				t.Errorf("bytecode %s, pull policy %s; want oci:/x:v1, %s", ref, pull, tc.wantPull)
			}
		})
	}
}

// TestProgramRoundTrip converts a program's attach spec to the API and back.
func TestProgramRoundTrip(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	specs := map[progtype.Kind]runtime.AttachSpec{
		progtype.XDP:        runtime.XDPAttach{Interface: "eth0", Netns: "/n", Mode: runtime.XDPModeNative, Priority: 3, ProceedOn: []string{"drop", "pass", "dispatcher_return"}},
		progtype.TC:         runtime.TCAttach{Interface: "eth0", Direction: runtime.Egress, Priority: 500, ProceedOn: []string{"ok", "pipe", "dispatcher_return"}},
		progtype.TCX:        runtime.TCXAttach{Interface: "eth0", Direction: runtime.Ingress, Priority: 500},
		progtype.Tracepoint: runtime.TracepointAttach{Tracepoint: "a/b"},
		progtype.Kprobe:     runtime.KprobeAttach{Function: "f", Offset: 8},
		progtype.Uprobe:     runtime.UprobeAttach{Target: "/bin/x", Offset: 16, PID: 3},
		progtype.Fentry:     runtime.FentryAttach{Function: "f"},
		progtype.Cgroup:     runtime.CgroupAttach{Path: "/sys/fs/cgroup", AttachType: runtime.CgroupInetEgress},
	}
	for kind, spec := range specs {
		t.Run(string(kind), func(t *testing.T) {
			p := runtime.Program{ID: 7, Managed: true, Name: "p", Kind: kind, Attach: spec, LoadedAt: at,
				Provenance: runtime.Provenance{Reference: "r", Digest: "sha256:x", Signer: "s", Rule: "rule", PolicyFingerprint: "fp"},
				LoadedBy:   runtime.Requester{UID: 1, GID: 2, PID: 3},
				Owner:      runtime.Owner{UID: 1, Config: "web", MapReaderNamespaces: []string{"obs"}},
				Kernel:     &runtime.KernelInfo{ProgramID: 11, LinkIDs: []uint32{12}, Stats: &runtime.RunStats{RunCount: 5, RunTime: time.Second}},
			}
			out := programProto(p)
			want := &pb.Program{Id: 7, Managed: true, Name: "p", Type: typeOf(kind), Attach: out.Attach, LoadedAt: timestamppb.New(at),
				Provenance: &pb.Provenance{Reference: "r", Digest: "sha256:x", Signer: "s", Rule: "rule", PolicyFingerprint: "fp"},
				LoadedBy:   &pb.Peer{Uid: 1, Gid: 2, Pid: 3},
				OwnerUid:   1,
				Owner:      &pb.Owner{Config: "web", MapReaderNamespaces: []string{"obs"}},
				Kernel:     &pb.KernelInfo{ProgramId: 11, LinkIds: []uint32{12}, RunCount: 5, RunTime: durationpb.New(time.Second)},
			}
			if diff := cmp.Diff(want, out, protocmp.Transform()); diff != "" {
				t.Errorf("program (-want +got):\n%s", diff)
			}
			back, err := attachSpec("attach", kind, out.GetAttach())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(spec, back); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}
