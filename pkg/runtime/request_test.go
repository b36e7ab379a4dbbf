package runtime

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/cilium/ebpf"
	"github.com/google/go-cmp/cmp"
)

func TestLoadRequestValidate(t *testing.T) {
	xdp := ProgramRequest{Name: "p", Kind: progtype.XDP, Attach: XDPAttach{Interface: "eth0"}}
	cases := map[string]struct {
		req      LoadRequest
		wantErr  string // "" for valid
		wantKind error
	}{
		"valid": {req: LoadRequest{Programs: []ProgramRequest{xdp}}},
		"valid with everything": {req: LoadRequest{Programs: []ProgramRequest{xdp}, Globals: map[string][]byte{"g": {1}}, Metadata: map[string]string{"app": "x"}, MapOwnerID: 3,
			Requester: Requester{UID: 1000}, Owner: Owner{UID: 1000, Config: "web.example-1", Namespace: "team-a", MapReaderNamespaces: []string{"team-a", "obs"}}}},
		"owner uid filled in later": {req: LoadRequest{Programs: []ProgramRequest{xdp}, Requester: Requester{UID: 1000}, Owner: Owner{Config: "web"}}},
		"owner uid not the requester's": {req: LoadRequest{Programs: []ProgramRequest{xdp}, Requester: Requester{UID: 1000}, Owner: Owner{UID: 1}},
			wantErr: "owner: uid 1 is not the requester's (1000)"},
		"owner config not a name":  {req: LoadRequest{Programs: []ProgramRequest{xdp}, Owner: Owner{Config: "Web_1"}}, wantErr: `owner config "Web_1"`},
		"owner config too long":    {req: LoadRequest{Programs: []ProgramRequest{xdp}, Owner: Owner{Config: strings.Repeat("a", 254)}}, wantErr: "owner config"},
		"owner namespace with dot": {req: LoadRequest{Programs: []ProgramRequest{xdp}, Owner: Owner{Namespace: "a.b"}}, wantErr: `owner namespace "a.b"`},
		"owner namespace newline":  {req: LoadRequest{Programs: []ProgramRequest{xdp}, Owner: Owner{Namespace: "a\nb"}}, wantErr: "owner namespace"},
		"map reader empty":         {req: LoadRequest{Programs: []ProgramRequest{xdp}, Owner: Owner{MapReaderNamespaces: []string{""}}}, wantErr: "owner map reader namespace"},
		"map reader twice":         {req: LoadRequest{Programs: []ProgramRequest{xdp}, Owner: Owner{MapReaderNamespaces: []string{"a", "a"}}}, wantErr: "owner map reader namespace a: given twice"},
		"map readers too many":     {req: LoadRequest{Programs: []ProgramRequest{xdp}, Owner: Owner{MapReaderNamespaces: manyNamespaces(65)}}, wantErr: "65, at most 64"},
		"no programs":              {req: LoadRequest{}, wantErr: "programs: none requested"},
		"unnamed program":          {req: LoadRequest{Programs: []ProgramRequest{{Kind: progtype.XDP, Attach: XDPAttach{Interface: "eth0"}}}}, wantErr: "program: missing name"},
		"unknown kind":             {req: LoadRequest{Programs: []ProgramRequest{{Name: "p", Kind: "lsm", Attach: XDPAttach{Interface: "eth0"}}}}, wantErr: `program p: kind "lsm"`},
		"kind not lower case":      {req: LoadRequest{Programs: []ProgramRequest{{Name: "p", Kind: "XDP", Attach: XDPAttach{Interface: "eth0"}}}}, wantErr: `program p: kind "XDP"`},
		"empty global name":        {req: LoadRequest{Programs: []ProgramRequest{xdp}, Globals: map[string][]byte{"": {1}}}, wantErr: "global data: empty name"},
		"empty metadata key":       {req: LoadRequest{Programs: []ProgramRequest{xdp}, Metadata: map[string]string{"": "x"}}, wantErr: "metadata: empty key"},
		"metadata value too long": {req: LoadRequest{Programs: []ProgramRequest{xdp}, Metadata: map[string]string{"k": strings.Repeat("v", 1025)}},
			wantErr: "metadata k: value longer than 1024 bytes"},
		"unknown xdp proceed-on": {req: LoadRequest{Programs: []ProgramRequest{{Name: "p", Kind: progtype.XDP, Attach: XDPAttach{Interface: "eth0", ProceedOn: []string{"pass", "ok"}}}}},
			wantErr: `program p: proceed-on "ok": not a xdp action (want aborted, drop, pass, tx, redirect, dispatcher_return)`},
		"unknown tc proceed-on": {req: LoadRequest{Programs: []ProgramRequest{{Name: "p", Kind: progtype.TC, Attach: TCAttach{Interface: "eth0", Direction: Ingress, ProceedOn: []string{"pass"}}}}},
			wantErr: `program p: proceed-on "pass": not a tc action`},
		"tc priority out of range": {req: LoadRequest{Programs: []ProgramRequest{{Name: "p", Kind: progtype.TC, Attach: TCAttach{Interface: "eth0", Direction: Ingress, Priority: 1001}}}},
			wantErr: "program p: priority 1001: out of range 1-1000"},
		"tc without direction": {req: LoadRequest{Programs: []ProgramRequest{{Name: "p", Kind: progtype.TC, Attach: TCAttach{Interface: "eth0"}}}}, wantErr: `direction ""`},
		"interface name too long": {req: LoadRequest{Programs: []ProgramRequest{{Name: "p", Kind: progtype.XDP, Attach: XDPAttach{Interface: "abcdefghijklmnop"}}}},
			wantErr: `interface "abcdefghijklmnop": not a valid name`},
		"uprobe without target":     {req: LoadRequest{Programs: []ProgramRequest{{Name: "p", Kind: progtype.Uprobe, Attach: UprobeAttach{Function: "f"}}}}, wantErr: "uprobe: missing target"},
		"uprobe without function":   {req: LoadRequest{Programs: []ProgramRequest{{Name: "p", Kind: progtype.Uretprobe, Attach: UprobeAttach{Target: "/bin/sh"}}}}, wantErr: "give a function or an offset"},
		"uprobe at an offset":       {req: LoadRequest{Programs: []ProgramRequest{{Name: "p", Kind: progtype.Uprobe, Attach: UprobeAttach{Target: "/bin/sh", Offset: 0x1000}}}}},
		"cgroup without path":       {req: LoadRequest{Programs: []ProgramRequest{{Name: "p", Kind: progtype.Cgroup, Attach: CgroupAttach{}}}}, wantErr: "cgroup: missing path"},
		"tracepoint with two slash": {req: LoadRequest{Programs: []ProgramRequest{{Name: "p", Kind: progtype.Tracepoint, Attach: TracepointAttach{Tracepoint: "a/b/c"}}}}, wantErr: "want group/name"},
		"tracepoint escaping":       {req: LoadRequest{Programs: []ProgramRequest{{Name: "p", Kind: progtype.Tracepoint, Attach: TracepointAttach{Tracepoint: "../x"}}}}, wantErr: "want group/name"},
		"raw tracepoint with group": {req: LoadRequest{Programs: []ProgramRequest{{Name: "p", Kind: progtype.RawTracepoint, Attach: RawTracepointAttach{Tracepoint: "sched/sched_switch"}}}}, wantErr: "without its group"},
		"tp_btf escaping":           {req: LoadRequest{Programs: []ProgramRequest{{Name: "p", Kind: progtype.TPBTF, Attach: RawTracepointAttach{Tracepoint: "../x"}}}}, wantErr: "without its group"},
		"tp_btf with tracepoint":    {req: LoadRequest{Programs: []ProgramRequest{{Name: "p", Kind: progtype.TPBTF, Attach: TracepointAttach{Tracepoint: "sched/sched_switch"}}}}, wantErr: "does not attach tp_btf"},
		"uprobe spec for a kprobe":  {req: LoadRequest{Programs: []ProgramRequest{{Name: "p", Kind: progtype.Kprobe, Attach: UprobeAttach{Target: "/bin/sh", Function: "main"}}}}, wantErr: "runtime.UprobeAttach does not attach kprobe programs"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.req.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("validate = %v, want an ErrInvalid mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func manyNamespaces(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("ns-%d", i)
	}
	return out
}

func TestParseID(t *testing.T) {
	for in, want := range map[string]ID{"1": 1, "42": 42, "18446744073709551615": ^ID(0)} {
		if got, err := ParseID(in); err != nil || got != want {
			t.Errorf("ParseID(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "x", "1.5", "18446744073709551616"} {
		if _, err := ParseID(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseID(%q) = %v, want ErrInvalid", in, err)
		}
	}
}

// TestCompleteFromSection checks that an attach spec without a target takes
// the one the program's ELF section names, and that a section naming none
// is a clear error.
func TestCompleteFromSection(t *testing.T) {
	cases := map[string]struct {
		spec    *ebpf.ProgramSpec
		attach  AttachSpec
		want    AttachSpec
		wantErr string
	}{
		"tracepoint":         {spec: &ebpf.ProgramSpec{Type: ebpf.TracePoint, SectionName: "tracepoint/syscalls/sys_enter_openat"}, attach: TracepointAttach{}, want: TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}},
		"tracepoint given":   {spec: &ebpf.ProgramSpec{Type: ebpf.TracePoint, SectionName: "tracepoint/syscalls/sys_enter_openat"}, attach: TracepointAttach{Tracepoint: "sched/sched_switch"}, want: TracepointAttach{Tracepoint: "sched/sched_switch"}},
		"kprobe":             {spec: &ebpf.ProgramSpec{Type: ebpf.Kprobe, SectionName: "kprobe/sys_getpid"}, attach: KprobeAttach{Offset: 4}, want: KprobeAttach{Function: "sys_getpid", Offset: 4}},
		"fentry":             {spec: &ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: ebpf.AttachTraceFEntry, AttachTo: "do_unlinkat", SectionName: "fentry/do_unlinkat"}, attach: FentryAttach{}, want: FentryAttach{Function: "do_unlinkat"}},
		"raw_tp":             {spec: &ebpf.ProgramSpec{Type: ebpf.RawTracepoint, AttachTo: "sched_switch", SectionName: "raw_tp/sched_switch"}, attach: RawTracepointAttach{}, want: RawTracepointAttach{Tracepoint: "sched_switch"}},
		"tp_btf":             {spec: &ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: ebpf.AttachTraceRawTp, AttachTo: "sched_switch", SectionName: "tp_btf/sched_switch"}, attach: RawTracepointAttach{}, want: RawTracepointAttach{Tracepoint: "sched_switch"}},
		"tp_btf given":       {spec: &ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: ebpf.AttachTraceRawTp, AttachTo: "sched_switch", SectionName: "tp_btf/sched_switch"}, attach: RawTracepointAttach{Tracepoint: "sched_wakeup"}, want: RawTracepointAttach{Tracepoint: "sched_wakeup"}},
		"raw_tp unnamed":     {spec: &ebpf.ProgramSpec{Type: ebpf.RawTracepoint, SectionName: "raw_tp"}, attach: RawTracepointAttach{}, wantErr: `raw tracepoint: missing name, and section "raw_tp" names none`},
		"kprobe unnamed":     {spec: &ebpf.ProgramSpec{Type: ebpf.Kprobe, SectionName: "kprobe"}, attach: KprobeAttach{}, wantErr: `kprobe: missing function, and section "kprobe" names none`},
		"tracepoint unnamed": {spec: &ebpf.ProgramSpec{Type: ebpf.TracePoint, SectionName: "tracepoint"}, attach: TracepointAttach{}, wantErr: `tracepoint: missing group/name, and section "tracepoint" names none`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := tc.attach.complete(tc.spec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("error = %v, want ErrInvalid mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("completed spec (-want +got):\n%s", diff)
			}
		})
	}
}
