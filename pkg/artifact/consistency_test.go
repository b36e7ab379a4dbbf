package artifact

import (
	"errors"
	"strings"
	"testing"
)

// TestBpfmanLabelTypes checks bpfman's spellings of program and map types
// against the objects: its own names for a type are accepted, another type
// is refused.
func TestBpfmanLabelTypes(t *testing.T) {
	cfg, err := Describe([]ObjectFile{example(t, "kprobe_counter"), example(t, "tc_counter"), example(t, "uprobe_counter"), example(t, "fentry_counter")})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		programs, maps map[string]string
		wantErr        string
	}{
		"kernel type names":         {programs: map[string]string{"tc_counter": "sched_cls", "kprobe_counter": "kprobe"}},
		"bpfman's names":            {programs: map[string]string{"tc_counter": "tc", "tcx_counter": "tcx", "kretprobe_counter": "kprobe", "uretprobe_counter": "uprobe", "fexit_counter": "fexit"}},
		"map type spelled apart":    {maps: map[string]string{"kprobe_calls": "ARRAY", "tc_stats": "array"}},
		"no type given":             {programs: map[string]string{"tc_counter": ""}},
		"kprobe named a uprobe":     {programs: map[string]string{"kprobe_counter": "uprobe"}, wantErr: `label io.ebpf.programs says program kprobe_counter is "uprobe", but kprobe_counter.bpf.o defines it as kprobe (kprobe)`},
		"tc named xdp":              {programs: map[string]string{"tc_counter": "xdp"}, wantErr: `says program tc_counter is "xdp", but tc_counter.bpf.o defines it as sched_cls (tc,tcx)`},
		"fentry named a tracepoint": {programs: map[string]string{"fentry_counter": "tracepoint"}, wantErr: `is "tracepoint", but fentry_counter.bpf.o defines it as tracing (fentry)`},
		"map of another type":       {maps: map[string]string{"tc_stats": "percpu_hash"}, wantErr: `label io.ebpf.maps says map tc_stats is "percpu_hash", but tc_counter.bpf.o defines it as array`},
		"unknown program":           {programs: map[string]string{"nope": "xdp"}, wantErr: "label io.ebpf.programs names program nope, which fentry_counter.bpf.o, kprobe_counter.bpf.o, tc_counter.bpf.o, uprobe_counter.bpf.o does not define"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := checkBpfmanLabels(cfg, tc.programs, tc.maps)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.wantErr != "" && (!errors.Is(err, ErrConfigMismatch) || !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestCheckConfigOwnBuild checks that a config Describe wrote agrees with its
// objects, and that changing any derived field makes it disagree.
func TestCheckConfigOwnBuild(t *testing.T) {
	objects := []ObjectFile{example(t, "xdp_verdict"), example(t, "tc_counter")}
	for name, lie := range map[string]func(c *Config){
		"none":           nil,
		"global offset":  func(c *Config) { c.Objects[1].DataSections[0].Globals[0].Offset = 4 },
		"attach type":    func(c *Config) { c.Objects[0].Programs[1].AttachType = "" },
		"kernel BTF":     func(c *Config) { c.Requires.KernelBTF = !c.Requires.KernelBTF },
		"a map too many": func(c *Config) { c.Objects[0].Maps = append(c.Objects[0].Maps, Map{Name: "extra"}) },
		"program gone":   func(c *Config) { c.Objects[0].Programs = c.Objects[0].Programs[:1] },
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := Describe(objects)
			if err != nil {
				t.Fatal(err)
			}
			if lie != nil {
				lie(cfg)
			}
			sources := make([]objectSource, len(objects))
			for i, o := range objects {
				sources[i] = o.source()
			}
			err = checkConfig(cfg, sources)
			if (err == nil) != (lie == nil) || (lie != nil && !errors.Is(err, ErrConfigMismatch)) {
				t.Errorf("checkConfig = %v, want ErrConfigMismatch", err)
			}
			t.Log(err)
		})
	}
}
