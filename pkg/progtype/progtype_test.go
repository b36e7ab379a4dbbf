package progtype_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/go-cmp/cmp"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

func TestOfExampleBytecode(t *testing.T) {
	type program struct {
		Kinds  []progtype.Kind
		Target string
	}
	cases := map[string]map[string]program{
		"xdp_counter": {
			"xdp_counter": {Kinds: []progtype.Kind{progtype.XDP}},
		},
		"tc_counter": {
			"tc_counter":  {Kinds: []progtype.Kind{progtype.TC, progtype.TCX}},
			"tcx_counter": {Kinds: []progtype.Kind{progtype.TCX, progtype.TC}},
		},
		"tracepoint_counter": {
			"tracepoint_counter": {Kinds: []progtype.Kind{progtype.Tracepoint}, Target: "syscalls/sys_enter_openat"},
		},
		"kprobe_counter": {
			"kprobe_counter":    {Kinds: []progtype.Kind{progtype.Kprobe}, Target: "sys_getpid"},
			"kretprobe_counter": {Kinds: []progtype.Kind{progtype.Kretprobe}, Target: "sys_getpid"},
		},
		"uprobe_counter": {
			"uprobe_counter":    {Kinds: []progtype.Kind{progtype.Uprobe}},
			"uretprobe_counter": {Kinds: []progtype.Kind{progtype.Uretprobe}},
		},
		"fentry_counter": {
			"fentry_counter": {Kinds: []progtype.Kind{progtype.Fentry}, Target: "do_unlinkat"},
			"fexit_counter":  {Kinds: []progtype.Kind{progtype.Fexit}, Target: "do_unlinkat"},
		},
		"cgroup_counter": {
			"cgroup_ingress_counter": {Kinds: []progtype.Kind{progtype.Cgroup}},
			"cgroup_egress_counter":  {Kinds: []progtype.Kind{progtype.Cgroup}},
		},
		"packet_counters": {
			"xdp_ingress_counter": {Kinds: []progtype.Kind{progtype.XDP}},
			"tc_egress_counter":   {Kinds: []progtype.Kind{progtype.TC, progtype.TCX}},
		},
		"xdp_verdict": {
			"xdp_verdict": {Kinds: []progtype.Kind{progtype.XDP}},
		},
		"tc_verdict": {
			"tc_verdict": {Kinds: []progtype.Kind{progtype.TC, progtype.TCX}},
		},
	}
	for object, want := range cases {
		t.Run(object, func(t *testing.T) {
			spec, err := ebpf.LoadCollectionSpec(filepath.Join("..", "..", "bytecode", object+".bpf.o"))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]program{}
			for name, p := range spec.Programs {
				got[name] = program{Kinds: progtype.Of(p), Target: progtype.AttachTarget(p)}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("kinds (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParse(t *testing.T) {
	cases := map[string]struct {
		in      string
		want    progtype.Kind
		wantErr bool
	}{
		"lower":   {in: "xdp", want: progtype.XDP},
		"upper":   {in: "TCX", want: progtype.TCX},
		"spaces":  {in: " kretprobe ", want: progtype.Kretprobe},
		"unknown": {in: "lsm", wantErr: true},
		"empty":   {in: "", wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := progtype.Parse(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("Parse(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func ExampleParse() {
	k, err := progtype.Parse("XDP")
	fmt.Println(k, err)
	_, err = progtype.Parse("socket")
	fmt.Println(err)
	// Output:
	// xdp <nil>
	// unknown program type "socket" (want one of xdp, tc, tcx, tracepoint, kprobe, kretprobe, uprobe, uretprobe, fentry, fexit, cgroup, raw_tracepoint, tp_btf)
}

// TestOfTracepointKinds checks the kinds and targets of raw tracepoint and
// BTF-enabled tracepoint programs, as cilium/ebpf reads their sections.
func TestOfTracepointKinds(t *testing.T) {
	type program struct {
		Kinds  []progtype.Kind
		Target string
	}
	cases := map[string]struct {
		spec *ebpf.ProgramSpec
		want program
	}{
		"raw_tp":         {spec: &ebpf.ProgramSpec{Type: ebpf.RawTracepoint, SectionName: "raw_tp/sched_switch", AttachTo: "sched_switch"}, want: program{[]progtype.Kind{progtype.RawTracepoint}, "sched_switch"}},
		"raw_tracepoint": {spec: &ebpf.ProgramSpec{Type: ebpf.RawTracepoint, SectionName: "raw_tracepoint/sched_wakeup", AttachTo: "sched_wakeup"}, want: program{[]progtype.Kind{progtype.RawTracepoint}, "sched_wakeup"}},
		"tp_btf":         {spec: &ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: ebpf.AttachTraceRawTp, SectionName: "tp_btf/sched_switch", AttachTo: "sched_switch"}, want: program{[]progtype.Kind{progtype.TPBTF}, "sched_switch"}},
		"writable raw":   {spec: &ebpf.ProgramSpec{Type: ebpf.RawTracepointWritable, SectionName: "raw_tp.w/bpf_test_finish"}, want: program{}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := program{Kinds: progtype.Of(tc.spec)}
			if got.Kinds != nil {
				got.Target = progtype.AttachTarget(tc.spec)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("kinds (-want +got):\n%s", diff)
			}
		})
	}
}
