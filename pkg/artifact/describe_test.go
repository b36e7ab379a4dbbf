package artifact

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// TestDescribeExampleBytecode checks that every object in bytecode/ parses
// and declares what docs/artifact-spec.md says it does.
func TestDescribeExampleBytecode(t *testing.T) {
	counter := func(name string, max uint32) Map {
		return Map{Name: name, Type: "array", KeySize: 4, ValueSize: 8, MaxEntries: max, Pinning: "none"}
	}
	kinds := func(k ...progtype.Kind) []progtype.Kind { return k }
	type want struct {
		programs []Program
		maps     []Map
		sections []DataSection
		requires Requirements
	}
	lookup := []string{"bpf_map_lookup_elem"}
	cases := map[string]want{
		"xdp_counter": {
			programs: []Program{{Name: "xdp_counter", Section: "xdp", Type: "xdp", AttachType: "xdp", Kinds: kinds(progtype.XDP)}},
			maps:     []Map{counter("xdp_stats", 256)},
			requires: Requirements{ProgramTypes: []string{"xdp"}, AttachTypes: []string{"xdp"}, MapTypes: []string{"array"}, Helpers: lookup},
		},
		"tc_counter": {
			programs: []Program{
				{Name: "tc_counter", Section: "tc", Type: "sched_cls", Kinds: kinds(progtype.TC, progtype.TCX)},
				{Name: "tcx_counter", Section: "tcx/ingress", Type: "sched_cls", AttachType: "tcx_ingress", Kinds: kinds(progtype.TCX, progtype.TC)},
			},
			maps:     []Map{counter("tc_stats", 256)},
			requires: Requirements{ProgramTypes: []string{"sched_cls"}, AttachTypes: []string{"tcx_ingress"}, MapTypes: []string{"array"}, Helpers: lookup},
		},
		"tracepoint_counter": {
			programs: []Program{{Name: "tracepoint_counter", Section: "tracepoint/syscalls/sys_enter_openat", Type: "tracepoint", AttachTarget: "syscalls/sys_enter_openat", Kinds: kinds(progtype.Tracepoint)}},
			maps:     []Map{{Name: "openat_calls", Type: "hash", KeySize: 4, ValueSize: 8, MaxEntries: 10240, Pinning: "none"}},
			requires: Requirements{ProgramTypes: []string{"tracepoint"}, AttachTypes: []string{}, MapTypes: []string{"hash"}, Helpers: []string{"bpf_get_current_pid_tgid", "bpf_map_lookup_elem", "bpf_map_update_elem"}},
		},
		"map_events": {
			programs: []Program{{Name: "map_events", Section: "tracepoint/syscalls/sys_enter_getppid", Type: "tracepoint", AttachTarget: "syscalls/sys_enter_getppid", Kinds: kinds(progtype.Tracepoint)}},
			maps: []Map{
				{Name: "calls", Type: "hash", KeySize: 4, ValueSize: 40, MaxEntries: 1024, Pinning: "none"},
				{Name: "events_perf", Type: "perf_event_array", KeySize: 4, ValueSize: 4, Pinning: "none"},
				{Name: "events_rb", Type: "ringbuf", MaxEntries: 256 * 1024, Pinning: "none"},
				{Name: "percpu_calls", Type: "percpu_array", KeySize: 4, ValueSize: 8, MaxEntries: 1, Pinning: "none"},
			},
			sections: []DataSection{
				{Name: ".bss", Size: 24, Globals: []Global{{Name: "ringbuf_full", Offset: 8, Size: 8, Type: "__u64"}, {Name: "seq", Size: 8, Type: "__u64"}, {Name: "unused_event", Offset: 16, Size: 8}}},
				{Name: ".rodata", ReadOnly: true, Size: 4, Globals: []Global{{Name: "target_tgid", Size: 4, Type: "__u32"}}},
			},
			requires: Requirements{ProgramTypes: []string{"tracepoint"}, AttachTypes: []string{}, MapTypes: []string{"array", "hash", "percpu_array", "perf_event_array", "ringbuf"},
				Helpers: []string{"bpf_get_current_comm", "bpf_get_current_pid_tgid", "bpf_map_lookup_elem", "bpf_map_update_elem", "bpf_perf_event_output", "bpf_ringbuf_reserve", "bpf_ringbuf_submit"}},
		},
		"uprobe_counter": {
			programs: []Program{
				{Name: "uprobe_counter", Section: "uprobe", Type: "kprobe", Kinds: kinds(progtype.Uprobe)},
				{Name: "uretprobe_counter", Section: "uretprobe", Type: "kprobe", Kinds: kinds(progtype.Uretprobe)},
			},
			maps:     []Map{counter("uprobe_calls", 2)},
			requires: Requirements{ProgramTypes: []string{"kprobe"}, AttachTypes: []string{}, MapTypes: []string{"array"}, Helpers: lookup},
		},
		"kprobe_counter": {
			programs: []Program{
				{Name: "kprobe_counter", Section: "kprobe/sys_getpid", Type: "kprobe", AttachTarget: "sys_getpid", Kinds: kinds(progtype.Kprobe)},
				{Name: "kretprobe_counter", Section: "kretprobe/sys_getpid", Type: "kprobe", AttachTarget: "sys_getpid", Kinds: kinds(progtype.Kretprobe)},
			},
			maps:     []Map{counter("kprobe_calls", 2)},
			requires: Requirements{ProgramTypes: []string{"kprobe"}, AttachTypes: []string{}, MapTypes: []string{"array"}, Helpers: lookup},
		},
		"fentry_counter": {
			programs: []Program{
				{Name: "fentry_counter", Section: "fentry/do_unlinkat", Type: "tracing", AttachType: "trace_fentry", AttachTarget: "do_unlinkat", Kinds: kinds(progtype.Fentry)},
				{Name: "fexit_counter", Section: "fexit/do_unlinkat", Type: "tracing", AttachType: "trace_fexit", AttachTarget: "do_unlinkat", Kinds: kinds(progtype.Fexit)},
			},
			maps:     []Map{counter("unlinkat_calls", 2)},
			requires: Requirements{ProgramTypes: []string{"tracing"}, AttachTypes: []string{"trace_fentry", "trace_fexit"}, MapTypes: []string{"array"}, Helpers: lookup, KernelBTF: true},
		},
		"cgroup_counter": {
			programs: []Program{
				{Name: "cgroup_egress_counter", Section: "cgroup_skb/egress", Type: "cgroup_skb", AttachType: "cgroup_inet_egress", Kinds: kinds(progtype.Cgroup)},
				{Name: "cgroup_ingress_counter", Section: "cgroup_skb/ingress", Type: "cgroup_skb", AttachType: "cgroup_inet_ingress", Kinds: kinds(progtype.Cgroup)},
			},
			maps:     []Map{counter("cgroup_packets", 2)},
			requires: Requirements{ProgramTypes: []string{"cgroup_skb"}, AttachTypes: []string{"cgroup_inet_egress", "cgroup_inet_ingress"}, MapTypes: []string{"array"}, Helpers: lookup},
		},
		"packet_counters": {
			programs: []Program{
				{Name: "tc_egress_counter", Section: "tc", Type: "sched_cls", Kinds: kinds(progtype.TC, progtype.TCX)},
				{Name: "xdp_ingress_counter", Section: "xdp", Type: "xdp", AttachType: "xdp", Kinds: kinds(progtype.XDP)},
			},
			maps:     []Map{counter("packet_stats", 2)},
			requires: Requirements{ProgramTypes: []string{"sched_cls", "xdp"}, AttachTypes: []string{"xdp"}, MapTypes: []string{"array"}, Helpers: lookup},
		},
		"xdp_verdict": {
			programs: []Program{{Name: "xdp_verdict", Section: "xdp", Type: "xdp", AttachType: "xdp", Kinds: kinds(progtype.XDP)}},
			maps:     []Map{},
			sections: []DataSection{
				{Name: ".bss", Size: 8, Globals: []Global{{Name: "packets", Size: 8, Type: "__u64"}}},
				{Name: ".rodata", ReadOnly: true, Size: 4, Globals: []Global{{Name: "verdict", Size: 4, Type: "__u32"}}},
			},
			requires: Requirements{ProgramTypes: []string{"xdp"}, AttachTypes: []string{"xdp"}, MapTypes: []string{"array"}, Helpers: []string{}},
		},
		"tc_verdict": {
			programs: []Program{{Name: "tc_verdict", Section: "tc", Type: "sched_cls", Kinds: kinds(progtype.TC, progtype.TCX)}},
			maps:     []Map{},
			sections: []DataSection{
				{Name: ".bss", Size: 8, Globals: []Global{{Name: "packets", Size: 8, Type: "__u64"}}},
				{Name: ".rodata", ReadOnly: true, Size: 4, Globals: []Global{{Name: "action", Size: 4, Type: "__s32"}}},
			},
			requires: Requirements{ProgramTypes: []string{"sched_cls"}, AttachTypes: []string{}, MapTypes: []string{"array"}, Helpers: []string{}},
		},
		// xdp_work does a chosen amount of work per packet.
		"xdp_work": {
			programs: []Program{{Name: "xdp_work", Section: "xdp", Type: "xdp", AttachType: "xdp", Kinds: kinds(progtype.XDP)}},
			maps:     []Map{},
			sections: []DataSection{{Name: ".rodata", ReadOnly: true, Size: 8, Globals: []Global{
				{Name: "drop_odd", Offset: 4, Size: 4, Type: "__u32"},
				{Name: "rounds", Size: 4, Type: "__u32"},
			}}},
			requires: Requirements{ProgramTypes: []string{"xdp"}, AttachTypes: []string{"xdp"}, MapTypes: []string{"array"}, Helpers: []string{}},
		},
		// chain_trace records the order of a dispatcher's chain.
		"chain_trace": {
			programs: []Program{
				{Name: "trace_tc", Section: "tc", Type: "sched_cls", Kinds: kinds(progtype.TC, progtype.TCX)},
				{Name: "trace_xdp", Section: "xdp", Type: "xdp", AttachType: "xdp", Kinds: kinds(progtype.XDP)},
			},
			maps: []Map{{Name: "trace", Type: "array", KeySize: 4, ValueSize: 4, MaxEntries: 16, Pinning: "none"}},
			sections: []DataSection{{Name: ".rodata", ReadOnly: true, Size: 12, Globals: []Global{
				{Name: "action", Offset: 8, Size: 4, Type: "__s32"},
				{Name: "tag", Size: 4, Type: "__u32"},
				{Name: "verdict", Offset: 4, Size: 4, Type: "__s32"},
			}}},
			requires: Requirements{ProgramTypes: []string{"sched_cls", "xdp"}, AttachTypes: []string{"xdp"}, MapTypes: []string{"array"}, Helpers: lookup},
		},
		// freplace_target and freplace_ext are the kernel smoke test's pair: an
		// extension replaces the target's global function decide().
		"freplace_target": {
			programs: []Program{{Name: "freplace_target", Section: "xdp", Type: "xdp", AttachType: "xdp", Kinds: kinds(progtype.XDP)}},
			maps:     []Map{},
			requires: Requirements{ProgramTypes: []string{"xdp"}, AttachTypes: []string{"xdp"}, MapTypes: []string{}, Helpers: []string{}},
		},
		"freplace_ext": {
			programs: []Program{{Name: "freplace_ext", Section: "freplace/decide", Type: "ext", Kinds: []progtype.Kind{}}},
			maps:     []Map{},
			requires: Requirements{ProgramTypes: []string{"ext"}, AttachTypes: []string{}, MapTypes: []string{}, Helpers: []string{}, KernelBTF: true},
		},
	}
	objects, err := filepath.Glob(filepath.Join(bytecodeDir, "*.bpf.o"))
	if err != nil {
		t.Fatal(err)
	}
	if len(objects) != len(cases) {
		t.Errorf("bytecode/ has %d objects, the test knows %d: describe the new ones here and in docs/artifact-spec.md", len(objects), len(cases))
	}
	for name, w := range cases {
		t.Run(name, func(t *testing.T) {
			obj := example(t, name)
			cfg, err := Describe([]ObjectFile{obj})
			if err != nil {
				t.Fatal(err)
			}
			if w.sections == nil {
				w.sections = []DataSection{}
			}
			w.requires.Kfuncs = []string{}
			for i := range w.programs {
				w.programs[i].License = "GPL"
			}
			want := &Config{
				SchemaVersion: ConfigSchemaVersion,
				ByteOrder:     LittleEndian,
				Objects: []Object{{
					Name: obj.Name, BTF: true,
					Programs: w.programs, Maps: w.maps, DataSections: w.sections,
				}},
				Requires: w.requires,
			}
			ignore := cmpopts.IgnoreFields(Object{}, "Digest", "Size")
			if diff := cmp.Diff(want, cfg, ignore, cmpopts.IgnoreFields(Program{}, "Instructions")); diff != "" {
				t.Errorf("Describe(%s) (-want +got):\n%s", obj.Name, diff)
			}
			for _, p := range cfg.Objects[0].Programs {
				if p.Instructions <= 0 {
					t.Errorf("program %s: %d instructions", p.Name, p.Instructions)
				}
			}
		})
	}
}

func TestDescribeTestdata(t *testing.T) {
	be, err := Describe([]ObjectFile{readObject(t, "testdata/xdp_counter_be.bpf.o")})
	if err != nil {
		t.Fatal(err)
	}
	if be.ByteOrder != BigEndian {
		t.Errorf("xdp_counter_be: byte order %s, want big", be.ByteOrder)
	}
	noBTF, err := Describe([]ObjectFile{readObject(t, "testdata/xdp_pass_nobtf.bpf.o")})
	if err != nil {
		t.Fatal(err)
	}
	if o := noBTF.Objects[0]; o.BTF || o.Programs[0].License != "Dual BSD/GPL" {
		t.Errorf("xdp_pass_nobtf: btf %v, license %q; want false, Dual BSD/GPL", o.BTF, o.Programs[0].License)
	}
}

// TestDescribeBadObjects feeds every kind of bad input to ReadObjectFile and
// Describe: each must fail with ErrInvalidObject (or the file error) and a
// message naming the file and the cause.
func TestDescribeBadObjects(t *testing.T) {
	xdp := example(t, "xdp_counter")
	self, err := os.Executable() // an ELF, but for this machine, not BPF
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		files   func(t *testing.T) []string
		wantErr error
		wantMsg string
	}{
		"not an ELF": {
			files:   func(t *testing.T) []string { return []string{writeTemp(t, "notes.o", []byte("just some text\n"))} },
			wantErr: ErrInvalidObject, wantMsg: "notes.o: invalid BPF object: not an ELF file",
		},
		"ELF for another machine": {
			files:   func(t *testing.T) []string { return []string{self} },
			wantErr: ErrInvalidObject, wantMsg: "not BPF",
		},
		"empty": {
			files:   func(t *testing.T) []string { return []string{writeTemp(t, "empty.o", nil)} },
			wantErr: ErrInvalidObject, wantMsg: "empty.o: invalid BPF object: empty file",
		},
		"missing": {
			files:   func(t *testing.T) []string { return []string{filepath.Join(t.TempDir(), "missing.o")} },
			wantErr: os.ErrNotExist, wantMsg: "missing.o: no such file or directory",
		},
		"directory": {
			files:   func(t *testing.T) []string { return []string{t.TempDir()} },
			wantErr: ErrInvalidObject, wantMsg: "not a regular file",
		},
		"truncated": {
			files: func(t *testing.T) []string {
				return []string{writeTemp(t, "truncated.o", xdp.Data[:len(xdp.Data)/2])}
			},
			wantErr: ErrInvalidObject, wantMsg: "truncated.o: invalid BPF object",
		},
		"corrupt section table": {
			files: func(t *testing.T) []string {
				return []string{writeTemp(t, "corrupt.o", corruptSectionHeaders(t, xdp.Data))}
			},
			wantErr: ErrInvalidObject, wantMsg: "corrupt.o: invalid BPF object",
		},
		"no programs": {
			files:   func(t *testing.T) []string { return []string{"testdata/no_programs.bpf.o"} },
			wantErr: ErrInvalidObject, wantMsg: "no_programs.bpf.o: invalid BPF object: no BPF programs in it",
		},
		"same program twice": {
			files: func(t *testing.T) []string {
				return []string{filepath.Join(bytecodeDir, "xdp_counter.bpf.o"), writeTemp(t, "copy.bpf.o", xdp.Data)}
			},
			wantErr: ErrInvalidObject, wantMsg: "copy.bpf.o: invalid BPF object: program xdp_counter is also declared by ../../bytecode/xdp_counter.bpf.o",
		},
		"same file name twice": {
			files: func(t *testing.T) []string {
				return []string{filepath.Join(bytecodeDir, "xdp_counter.bpf.o"), writeTemp(t, "xdp_counter.bpf.o", example(t, "tc_counter").Data)}
			},
			wantErr: ErrInvalidObject, wantMsg: "has the same file name",
		},
		"mixed byte orders": {
			files: func(t *testing.T) []string {
				return []string{filepath.Join(bytecodeDir, "tc_counter.bpf.o"), "testdata/xdp_counter_be.bpf.o"}
			},
			wantErr: ErrInvalidObject, wantMsg: "xdp_counter_be.bpf.o: invalid BPF object: big-endian, but ../../bytecode/tc_counter.bpf.o is little-endian",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var objects []ObjectFile
			var err error
			for _, path := range tc.files(t) {
				var o ObjectFile
				if o, err = ReadObjectFile(path); err != nil {
					break
				}
				objects = append(objects, o)
			}
			if err == nil {
				_, err = Describe(objects)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.wantMsg) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line containing %q", msg, tc.wantMsg)
			}
		})
	}
}

// corruptSectionHeaders returns a copy of an ELF object whose section
// headers point past the end of the file.
func corruptSectionHeaders(t *testing.T, data []byte) []byte {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if f.Class != elf.ELFCLASS64 || f.ByteOrder != binary.LittleEndian {
		t.Fatalf("want a 64-bit little-endian ELF")
	}
	out := bytes.Clone(data)
	shoff := binary.LittleEndian.Uint64(out[0x28:])
	const shentsize = 64
	for i := 1; i < len(f.Sections); i++ {
		off := shoff + uint64(i)*shentsize + 0x18 // sh_offset
		binary.LittleEndian.PutUint64(out[off:], uint64(len(data))*4)
	}
	return out
}

func ExampleDescribe() {
	object, err := ReadObjectFile("../../bytecode/tracepoint_counter.bpf.o")
	if err != nil {
		panic(err)
	}
	cfg, err := Describe([]ObjectFile{object})
	if err != nil {
		panic(err)
	}
	p, _, _ := cfg.Program("tracepoint_counter")
	fmt.Println(p.Type, p.AttachTarget, p.Kinds)
	fmt.Println(cfg.Requires.Helpers)
	// Output:
	// tracepoint syscalls/sys_enter_openat [tracepoint]
	// [bpf_get_current_pid_tgid bpf_map_lookup_elem bpf_map_update_elem]
}

func BenchmarkDescribe(b *testing.B) {
	objects := []ObjectFile{example(b, "tc_counter"), example(b, "xdp_verdict"), example(b, "tracepoint_counter")}
	for b.Loop() {
		if _, err := Describe(objects); err != nil {
			b.Fatal(err)
		}
	}
}
