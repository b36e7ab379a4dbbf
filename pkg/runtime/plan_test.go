package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

func object(t *testing.T, name string) Object {
	t.Helper()
	elf, err := os.ReadFile(filepath.Join("..", "..", "bytecode", name))
	if err != nil {
		t.Fatal(err)
	}
	return Object{Name: name, ELF: elf}
}

// TestPlan checks a request against bytecode, without the kernel.
func TestPlan(t *testing.T) {
	xdpCounter := object(t, "xdp_counter.bpf.o")
	verdict := object(t, "xdp_verdict.bpf.o")
	cgroup := object(t, "cgroup_counter.bpf.o")
	packet := object(t, "packet_counters.bpf.o")
	eth0 := XDPAttach{Interface: "eth0"}
	cases := map[string]struct {
		objects  []Object
		allowed  []progtype.Kind
		req      LoadRequest
		want     error
		wantErr  string
		wantSpec AttachSpec // the first program's completed attach spec
	}{
		"xdp with defaults": {
			objects:  []Object{xdpCounter},
			req:      LoadRequest{Programs: []ProgramRequest{{Name: "xdp_counter", Kind: progtype.XDP, Attach: eth0}}},
			wantSpec: XDPAttach{Interface: "eth0", Priority: DefaultPriority, ProceedOn: []string{"pass", "dispatcher_return"}},
		},
		"program in the second object": {
			objects:  []Object{xdpCounter, verdict},
			req:      LoadRequest{Programs: []ProgramRequest{{Name: "xdp_verdict", Kind: progtype.XDP, Attach: XDPAttach{Interface: "eth0", Priority: 3, ProceedOn: []string{"PASS", "drop", "pass"}}}}},
			wantSpec: XDPAttach{Interface: "eth0", Priority: 3, ProceedOn: []string{"drop", "pass"}},
		},
		"program in two objects": {
			objects: []Object{xdpCounter, {Name: "copy.bpf.o", ELF: xdpCounter.ELF}},
			req:     LoadRequest{Programs: []ProgramRequest{{Name: "xdp_counter", Kind: progtype.XDP, Attach: eth0}}},
			want:    ErrInvalid, wantErr: "program xdp_counter: in both xdp_counter.bpf.o and copy.bpf.o",
		},
		"unknown program": {
			objects: []Object{packet},
			req:     LoadRequest{Programs: []ProgramRequest{{Name: "nope", Kind: progtype.XDP, Attach: eth0}}},
			want:    ErrProgramNotFound, wantErr: "program nope: not in packet_counters.bpf.o (programs: tc_egress_counter, xdp_ingress_counter)",
		},
		"tc program as tcx": {
			objects:  []Object{packet},
			req:      LoadRequest{Programs: []ProgramRequest{{Name: "tc_egress_counter", Kind: progtype.TCX, Attach: TCXAttach{Interface: "eth0", Direction: Egress}}}},
			wantSpec: TCXAttach{Interface: "eth0", Direction: Egress, Priority: DefaultPriority},
		},
		"tc with defaults": {
			objects:  []Object{packet},
			req:      LoadRequest{Programs: []ProgramRequest{{Name: "tc_egress_counter", Kind: progtype.TC, Attach: TCAttach{Interface: "eth0", Direction: Egress}}}},
			wantSpec: TCAttach{Interface: "eth0", Direction: Egress, Priority: DefaultPriority, ProceedOn: []string{"ok", "pipe", "dispatcher_return"}},
		},
		"wrong kind": {
			objects: []Object{packet},
			req:     LoadRequest{Programs: []ProgramRequest{{Name: "tc_egress_counter", Kind: progtype.XDP, Attach: eth0}}},
			want:    ErrInvalid, wantErr: "program tc_egress_counter: is of kind tc or tcx (section tc), not xdp",
		},
		"kind allowed by the rule": {
			objects:  []Object{xdpCounter},
			allowed:  []progtype.Kind{progtype.XDP},
			req:      LoadRequest{Programs: []ProgramRequest{{Name: "xdp_counter", Kind: progtype.XDP, Attach: eth0}}},
			wantSpec: XDPAttach{Interface: "eth0", Priority: DefaultPriority, ProceedOn: []string{"pass", "dispatcher_return"}},
		},
		"kind the rule forbids": {
			objects: []Object{xdpCounter},
			allowed: []progtype.Kind{},
			req:     LoadRequest{Programs: []ProgramRequest{{Name: "xdp_counter", Kind: progtype.XDP, Attach: eth0}}},
			want:    ErrPermission, wantErr: `kind xdp not allowed by policy rule "r" (allows none)`,
		},
		"global override": {
			objects:  []Object{verdict},
			req:      LoadRequest{Programs: []ProgramRequest{{Name: "xdp_verdict", Kind: progtype.XDP, Attach: eth0}}, Globals: map[string][]byte{"verdict": {1, 0, 0, 0}, "packets": make([]byte, 8)}},
			wantSpec: XDPAttach{Interface: "eth0", Priority: DefaultPriority, ProceedOn: []string{"pass", "dispatcher_return"}},
		},
		"global too long": {
			objects: []Object{verdict},
			req:     LoadRequest{Programs: []ProgramRequest{{Name: "xdp_verdict", Kind: progtype.XDP, Attach: eth0}}, Globals: map[string][]byte{"packets": make([]byte, 9)}},
			want:    ErrInvalid, wantErr: "global data packets: 9 bytes given, xdp_verdict.bpf.o declares 8",
		},
		"global in an object not loaded": {
			objects: []Object{xdpCounter, verdict},
			req:     LoadRequest{Programs: []ProgramRequest{{Name: "xdp_counter", Kind: progtype.XDP, Attach: eth0}}, Globals: map[string][]byte{"verdict": {1, 0, 0, 0}}},
			want:    ErrInvalid, wantErr: "global data verdict: not declared by xdp_counter.bpf.o (declared: none)",
		},
		"cgroup attach type from the section": {
			objects:  []Object{cgroup},
			req:      LoadRequest{Programs: []ProgramRequest{{Name: "cgroup_egress_counter", Kind: progtype.Cgroup, Attach: CgroupAttach{Path: "/sys/fs/cgroup"}}}},
			wantSpec: CgroupAttach{Path: "/sys/fs/cgroup", AttachType: CgroupInetEgress},
		},
		"no objects": {
			req:  LoadRequest{Programs: []ProgramRequest{{Name: "xdp_counter", Kind: progtype.XDP, Attach: eth0}}},
			want: ErrInvalid, wantErr: "no objects for this platform",
		},
		"not an ELF object": {
			objects: []Object{{Name: "junk.o", ELF: []byte("not elf")}},
			req:     LoadRequest{Programs: []ProgramRequest{{Name: "xdp_counter", Kind: progtype.XDP, Attach: eth0}}},
			want:    ErrInvalid, wantErr: "object junk.o:",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			bc := &Bytecode{Objects: tc.objects, Provenance: Provenance{Reference: "file:x", Rule: "r", AllowedKinds: tc.allowed}}
			l, err := plan(&tc.req, bc)
			if tc.want != nil {
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("plan = %v, want %q mentioning %q", err, tc.want, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			if diff := cmp.Diff(tc.wantSpec, l.programs[0].attach); diff != "" {
				t.Errorf("completed attach spec (-want +got):\n%s", diff)
			}
			for _, o := range l.objects {
				if len(o.spec.Programs) != len(o.programs) {
					t.Errorf("object %s keeps %d programs, want only the %d requested", o.name, len(o.spec.Programs), len(o.programs))
				}
			}
		})
	}
}

// TestPlanSetsGlobals checks that an override reaches the variable.
func TestPlanSetsGlobals(t *testing.T) {
	req := LoadRequest{
		Programs: []ProgramRequest{{Name: "xdp_verdict", Kind: progtype.XDP, Attach: XDPAttach{Interface: "eth0"}}},
		Globals:  map[string][]byte{"verdict": {1, 0, 0, 0}},
	}
	l, err := plan(&req, &Bytecode{Objects: []Object{object(t, "xdp_verdict.bpf.o")}})
	if err != nil {
		t.Fatal(err)
	}
	var v uint32
	if err := l.objects[0].spec.Variables["verdict"].Get(&v); err != nil || v != 1 {
		t.Fatalf("verdict = %d, %v; want 1", v, err)
	}
}
