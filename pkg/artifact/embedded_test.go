package artifact_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// TestReadEmbeddedObjectLibbpfTools extracts the objects of bcc's tools as
// Debian ships them and describes them: the programs, their kinds and the
// .rodata configuration come out of the unmodified objects.
func TestReadEmbeddedObjectLibbpfTools(t *testing.T) {
	type program struct {
		Section string
		Kinds   []progtype.Kind
	}
	cases := map[string]struct {
		programs map[string]program
		globals  []string
	}{
		"opensnoop": {
			programs: map[string]program{
				"tracepoint__syscalls__sys_enter_open":   {"tracepoint/syscalls/sys_enter_open", []progtype.Kind{"tracepoint"}},
				"tracepoint__syscalls__sys_enter_openat": {"tracepoint/syscalls/sys_enter_openat", []progtype.Kind{"tracepoint"}},
				"tracepoint__syscalls__sys_exit_open":    {"tracepoint/syscalls/sys_exit_open", []progtype.Kind{"tracepoint"}},
				"tracepoint__syscalls__sys_exit_openat":  {"tracepoint/syscalls/sys_exit_openat", []progtype.Kind{"tracepoint"}},
			},
			globals: []string{"targ_failed", "targ_pid", "targ_tgid", "targ_uid"},
		},
		"runqslower": {
			programs: map[string]program{
				"handle_sched_switch":     {"raw_tp/sched_switch", []progtype.Kind{"raw_tracepoint"}},
				"handle_sched_wakeup":     {"raw_tp/sched_wakeup", []progtype.Kind{"raw_tracepoint"}},
				"handle_sched_wakeup_new": {"raw_tp/sched_wakeup_new", []progtype.Kind{"raw_tracepoint"}},
				"sched_switch":            {"tp_btf/sched_switch", []progtype.Kind{"tp_btf"}},
				"sched_wakeup":            {"tp_btf/sched_wakeup", []progtype.Kind{"tp_btf"}},
				"sched_wakeup_new":        {"tp_btf/sched_wakeup_new", []progtype.Kind{"tp_btf"}},
			},
			globals: []string{"min_us", "targ_pid", "targ_tgid"},
		},
		"solisten": {
			programs: map[string]program{
				"inet_listen_entry": {"kprobe/inet_listen", []progtype.Kind{"kprobe"}},
				"inet_listen_exit":  {"kretprobe/inet_listen", []progtype.Kind{"kretprobe"}},
				"inet_listen_fexit": {"fexit/inet_listen", []progtype.Kind{"fexit"}},
			},
			globals: []string{"target_pid"},
		},
	}
	for tool, want := range cases {
		t.Run(tool, func(t *testing.T) {
			obj, err := artifact.ReadEmbeddedObject(testutil.LibbpfTool(t, tool))
			if err != nil {
				t.Fatal(err)
			}
			if obj.Name != tool+".bpf.o" {
				t.Errorf("object named %q, want %s.bpf.o", obj.Name, tool)
			}
			cfg, err := artifact.Describe([]artifact.ObjectFile{obj})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]program{}
			var globals []string
			for _, o := range cfg.Objects {
				for _, p := range o.Programs {
					got[p.Name] = program{Section: p.Section, Kinds: p.Kinds}
				}
				for _, d := range o.DataSections {
					for _, g := range d.Globals {
						globals = append(globals, g.Name)
					}
				}
			}
			slices.Sort(globals)
			if diff := cmp.Diff(want.programs, got); diff != "" {
				t.Errorf("programs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want.globals, globals); diff != "" {
				t.Errorf("globals (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExtractEmbeddedObjectDamage damages the embedded object of a real
// tool's binary in memory: each damage is refused with ErrInvalidObject.
func TestExtractEmbeddedObjectDamage(t *testing.T) {
	bin, err := os.ReadFile(testutil.LibbpfTool(t, "opensnoop"))
	if err != nil {
		t.Fatal(err)
	}
	good, err := artifact.ExtractEmbeddedObject("opensnoop", bin)
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(bin, good.Data)
	if start < 0 {
		t.Fatal("the extracted object is not a slice of the binary")
	}
	cases := map[string]func([]byte) []byte{
		"cut in the object":     func(b []byte) []byte { return b[:start+len(good.Data)-1] },
		"no object":             func(b []byte) []byte { return append(slices.Clone(b[:start]), b[start+len(good.Data):]...) },
		"doubled":               func(b []byte) []byte { return append(slices.Clone(b), good.Data...) },
		"section headers lying": func(b []byte) []byte { b = slices.Clone(b); b[start+0x28+4] = 0x7f; return b },
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := artifact.ExtractEmbeddedObject("opensnoop", damage(bin))
			if !errors.Is(err, artifact.ErrInvalidObject) {
				t.Fatalf("error %v, want ErrInvalidObject", err)
			}
		})
	}
}

func ExampleReadEmbeddedObject() {
	obj, err := artifact.ReadEmbeddedObject(filepath.Join("..", "..", "testdata", "bad", "binary", "valid"))
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg, err := artifact.Describe([]artifact.ObjectFile{obj})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(obj.Name, cfg.Objects[0].Programs[0].Name)
	// Output: valid.bpf.o xdp_counter
}
