package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/bpfd-dev/bpfd/internal/testing/k8stest"
	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

var testEnv *k8stest.Env

func TestMain(m *testing.M) { k8stest.Main(m, &testEnv) }

const digest = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func validConfig() *v1alpha1.BpfProgramConfig {
	return &v1alpha1.BpfProgramConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "valid"},
		Spec: v1alpha1.BpfProgramConfigSpec{
			Bytecode: v1alpha1.BytecodeImage{Image: "registry.example.com/bpfd/xdp_counter:v1" + digest},
			Programs: []v1alpha1.Program{{
				Name: "xdp_counter",
				Type: v1alpha1.ProgramTypeXDP,
				XDP: &v1alpha1.XDPAttach{
					InterfaceSelector: v1alpha1.InterfaceSelector{Interfaces: []string{"eth0"}},
				},
			}},
		},
	}
}

// TestConfigValidation proves the CRD's schema and CEL rules on the real API
// server: each case edits a valid config and expects it accepted, or refused
// with a message naming the problem.
func TestConfigValidation(t *testing.T) {
	cases := map[string]struct {
		edit    func(*v1alpha1.BpfProgramConfig)
		wantErr string // "" means accepted
	}{
		"digest":          {edit: func(*v1alpha1.BpfProgramConfig) {}},
		"digest only":     {edit: func(c *v1alpha1.BpfProgramConfig) { c.Spec.Bytecode.Image = "registry.example.com/bpfd/x" + digest }},
		"oci layout":      {edit: func(c *v1alpha1.BpfProgramConfig) { c.Spec.Bytecode.Image = "oci:/var/lib/bytecode" + digest }},
		"tag only":        {edit: func(c *v1alpha1.BpfProgramConfig) { c.Spec.Bytecode.Image = "registry.example.com/bpfd/x:v1" }, wantErr: "image must be pinned by digest"},
		"no tag":          {edit: func(c *v1alpha1.BpfProgramConfig) { c.Spec.Bytecode.Image = "registry.example.com/bpfd/x" }, wantErr: "image must be pinned by digest"},
		"short digest":    {edit: func(c *v1alpha1.BpfProgramConfig) { c.Spec.Bytecode.Image = "registry.example.com/bpfd/x@sha256:0123" }, wantErr: "image must be pinned by digest"},
		"digest mid-name": {edit: func(c *v1alpha1.BpfProgramConfig) { c.Spec.Bytecode.Image += "/more" }, wantErr: "image must be pinned by digest"},
		"tag with opt-out": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.Bytecode.Image = "registry.example.com/bpfd/x:v1"
			c.Spec.Bytecode.AllowTagUnsafe = true
		}},
		"map readers":             {edit: func(c *v1alpha1.BpfProgramConfig) { c.Spec.MapReaderNamespaces = []string{"apps", "monitoring-2"} }},
		"a map reader not a name": {edit: func(c *v1alpha1.BpfProgramConfig) { c.Spec.MapReaderNamespaces = []string{"Apps"} }, wantErr: "spec.mapReaderNamespaces[0]"},
		"an empty map reader":     {edit: func(c *v1alpha1.BpfProgramConfig) { c.Spec.MapReaderNamespaces = []string{""} }, wantErr: "spec.mapReaderNamespaces[0]"},
		"a map reader twice":      {edit: func(c *v1alpha1.BpfProgramConfig) { c.Spec.MapReaderNamespaces = []string{"apps", "apps"} }, wantErr: "Duplicate value"},
		"65 map readers": {edit: func(c *v1alpha1.BpfProgramConfig) {
			for i := range 65 {
				c.Spec.MapReaderNamespaces = append(c.Spec.MapReaderNamespaces, fmt.Sprintf("ns-%d", i))
			}
		}, wantErr: "must have at most 64 items"},
		"empty image":      {edit: func(c *v1alpha1.BpfProgramConfig) { c.Spec.Bytecode.Image = "" }, wantErr: "spec.bytecode.image"},
		"long image":       {edit: func(c *v1alpha1.BpfProgramConfig) { c.Spec.Bytecode.Image = strings.Repeat("a", 1025) + digest }, wantErr: "Too long"},
		"bad pull policy":  {edit: func(c *v1alpha1.BpfProgramConfig) { c.Spec.Bytecode.PullPolicy = "Sometimes" }, wantErr: "spec.bytecode.pullPolicy"},
		"pull policy":      {edit: func(c *v1alpha1.BpfProgramConfig) { c.Spec.Bytecode.PullPolicy = v1alpha1.PullAlways }},
		"no programs":      {edit: func(c *v1alpha1.BpfProgramConfig) { c.Spec.Programs = nil }, wantErr: "spec.programs"},
		"17 programs":      {edit: func(c *v1alpha1.BpfProgramConfig) { c.Spec.Programs = programs(17) }, wantErr: "must have at most 16 items"},
		"16 programs":      {edit: func(c *v1alpha1.BpfProgramConfig) { c.Spec.Programs = programs(16) }},
		"duplicate name":   {edit: func(c *v1alpha1.BpfProgramConfig) { c.Spec.Programs = append(c.Spec.Programs, c.Spec.Programs[0]) }, wantErr: "Duplicate value"},
		"bad program name": {edit: func(c *v1alpha1.BpfProgramConfig) { c.Spec.Programs[0].Name = "xdp-counter" }, wantErr: "spec.programs[0].name"},
		"unknown type":     {edit: func(c *v1alpha1.BpfProgramConfig) { c.Spec.Programs[0].Type = "socket" }, wantErr: "Unsupported value"},
		"no attach block": {edit: func(c *v1alpha1.BpfProgramConfig) { c.Spec.Programs[0].XDP = nil },
			wantErr: "type xdp takes the xdp attach block"},
		"two attach blocks": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.Programs[0].Tracepoint = &v1alpha1.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}
		}, wantErr: "type tracepoint takes the tracepoint attach block, and only type tracepoint does"},
		"block of another type": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.Programs[0].Type = v1alpha1.ProgramTypeTC
		}, wantErr: "type tc takes the tc attach block"},
		"kretprobe takes kprobe": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.Programs[0] = v1alpha1.Program{Name: "p", Type: v1alpha1.ProgramTypeKretprobe, Kprobe: &v1alpha1.KprobeAttach{Function: "do_unlinkat"}}
		}},
		"uretprobe takes uprobe": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.Programs[0] = v1alpha1.Program{Name: "p", Type: v1alpha1.ProgramTypeUretprobe, Uprobe: &v1alpha1.UprobeAttach{Target: "/usr/bin/bash", Function: "readline"}}
		}},
		"uprobe without function or offset": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.Programs[0] = v1alpha1.Program{Name: "p", Type: v1alpha1.ProgramTypeUprobe, Uprobe: &v1alpha1.UprobeAttach{Target: "/usr/bin/bash"}}
		}, wantErr: "uprobe needs a function, an offset, or both"},
		"uprobe relative target": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.Programs[0] = v1alpha1.Program{Name: "p", Type: v1alpha1.ProgramTypeUprobe, Uprobe: &v1alpha1.UprobeAttach{Target: "bash", Function: "readline"}}
		}, wantErr: "spec.programs[0].uprobe.target"},
		"tracepoint without group": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.Programs[0] = v1alpha1.Program{Name: "p", Type: v1alpha1.ProgramTypeTracepoint, Tracepoint: &v1alpha1.TracepointAttach{Tracepoint: "sys_enter_openat"}}
		}, wantErr: "spec.programs[0].tracepoint.tracepoint"},
		"tc without direction": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.Programs[0] = v1alpha1.Program{Name: "p", Type: v1alpha1.ProgramTypeTC, TC: &v1alpha1.TCAttach{
				InterfaceSelector: v1alpha1.InterfaceSelector{PrimaryNodeInterface: true}}}
		}, wantErr: "spec.programs[0].tc.direction"},
		"interfaces and primary": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.Programs[0].XDP.InterfaceSelector.PrimaryNodeInterface = true
		}, wantErr: "set either interfaces or primaryNodeInterface: true"},
		"no interface": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.Programs[0].XDP.InterfaceSelector = v1alpha1.InterfaceSelector{}
		}, wantErr: "set either interfaces or primaryNodeInterface: true"},
		"interface name too long": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.Programs[0].XDP.InterfaceSelector.Interfaces = []string{"abcdefghijklmnop"}
		}, wantErr: "Too long"},
		"priority out of range": {edit: func(c *v1alpha1.BpfProgramConfig) { c.Spec.Programs[0].XDP.Priority = 1001 }, wantErr: "less than or equal to 1000"},
		"bad proceed-on": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.Programs[0].XDP.ProceedOn = []v1alpha1.XDPAction{"Shot"}
		}, wantErr: "Unsupported value"},
		"global data": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.GlobalData = map[string][]byte{"verdict": {1, 0, 0, 0}}
		}},
		"global data bad name": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.GlobalData = map[string][]byte{"not a name": {1}}
		}, wantErr: "globalData keys must be C identifiers"},
		"global data too big": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.GlobalData = map[string][]byte{"big": make([]byte, 4097)}
		}, wantErr: "globalData values must be at most 4096 bytes"},
		"node selector": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.NodeSelector.MatchLabels = map[string]string{"kubernetes.io/os": "linux"}
		}},
		"node selector too big": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.NodeSelector.MatchLabels = map[string]string{}
			for i := range 17 {
				c.Spec.NodeSelector.MatchLabels[string(rune('a'+i))] = "x"
			}
		}, wantErr: "spec.nodeSelector.matchLabels: Too many: 17: must have at most 16 items"},
		"node selector value too long": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.NodeSelector.MatchLabels = map[string]string{"k": strings.Repeat("v", 64)}
		}, wantErr: "a label value at most 63"},
		"node selector expression": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.NodeSelector.MatchExpressions = []v1alpha1.LabelSelectorRequirement{{Key: "zone", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b"}}}
		}},
		"node selector too many values": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.NodeSelector.MatchExpressions = []v1alpha1.LabelSelectorRequirement{{Key: "zone", Operator: metav1.LabelSelectorOpIn, Values: make([]string, 65)}}
		}, wantErr: "spec.nodeSelector.matchExpressions[0].values: Too many: 65: must have at most 64 items"},
		"node selector key too long": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.NodeSelector.MatchExpressions = []v1alpha1.LabelSelectorRequirement{{Key: strings.Repeat("k", 318), Operator: metav1.LabelSelectorOpExists}}
		}, wantErr: "spec.nodeSelector.matchExpressions[0].key: Too long"},
		"node selector bad operator": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.NodeSelector.MatchExpressions = []v1alpha1.LabelSelectorRequirement{{Key: "zone", Operator: "Near"}}
		}, wantErr: `spec.nodeSelector.matchExpressions[0].operator: Unsupported value: "Near"`},
		"map owner selector value too long": {edit: func(c *v1alpha1.BpfProgramConfig) {
			c.Spec.MapOwnerSelector = &v1alpha1.LabelSelector{MatchExpressions: []v1alpha1.LabelSelectorRequirement{{Key: "k", Operator: metav1.LabelSelectorOpIn, Values: []string{strings.Repeat("v", 64)}}}}
		}, wantErr: "spec.mapOwnerSelector.matchExpressions[0].values[0]: Too long"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := validConfig()
			tc.edit(c)
			err := testEnv.Client.Create(context.Background(), c, client.DryRunAll)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("accepted, want an error containing %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("error %q does not contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestConfigValidationNeedsNodeSelector(t *testing.T) {
	// A typed client always sends nodeSelector ({}), so leave it out of the
	// JSON on purpose.
	raw := []byte(`{"apiVersion":"bpfd.io/v1alpha1","kind":"BpfProgramConfig","metadata":{"name":"no-selector"},
		"spec":{"bytecode":{"image":"r.example.com/x` + digest + `"},
		"programs":[{"name":"p","type":"tracepoint","tracepoint":{"tracepoint":"syscalls/sys_enter_openat"}}]}}`)
	obj := map[string]any{}
	if err := yaml.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	err := testEnv.Client.Create(context.Background(), &unstructured.Unstructured{Object: obj}, client.DryRunAll)
	if err == nil || !strings.Contains(err.Error(), "spec.nodeSelector: Required value") {
		t.Fatalf("got %v, want spec.nodeSelector: Required value", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	c := validConfig()
	if err := testEnv.Client.Create(context.Background(), c, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	if c.Spec.Bytecode.PullPolicy != v1alpha1.PullIfNotPresent {
		t.Fatalf("pullPolicy defaulted to %q, want IfNotPresent", c.Spec.Bytecode.PullPolicy)
	}
}

// TestSamples proves every sample in config/samples is accepted.
func TestSamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testEnv.Root, "config", "samples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	types := map[v1alpha1.ProgramType]bool{}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(data, &tm); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var obj client.Object
			switch tm.Kind {
			case "BpfProgramConfig":
				var c v1alpha1.BpfProgramConfig
				if err := yaml.UnmarshalStrict(data, &c); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				for _, p := range c.Spec.Programs {
					types[p.Type] = true
				}
				obj = &c
			case "BpfTenantProgramConfig":
				var c v1alpha1.BpfTenantProgramConfig
				if err := yaml.UnmarshalStrict(data, &c); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.Namespace}}
				if err := testEnv.Client.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
					t.Fatal(err)
				}
				obj = &c
			case "BpfTenantGrant":
				var g v1alpha1.BpfTenantGrant
				if err := yaml.UnmarshalStrict(data, &g); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				obj = &g
			default:
				t.Fatalf("%s: a sample of kind %q", f, tm.Kind)
			}
			if err := testEnv.Client.Create(context.Background(), obj, client.DryRunAll); err != nil {
				t.Fatalf("%s refused: %v", f, err)
			}
		})
	}
	for _, pt := range []v1alpha1.ProgramType{"xdp", "tc", "tcx", "tracepoint", "kprobe", "kretprobe", "uprobe", "uretprobe", "fentry", "fexit", "cgroup", "raw_tracepoint", "tp_btf"} {
		if !types[pt] {
			t.Errorf("no sample of program type %s", pt)
		}
	}
}

func TestBpfProgramImmutableNode(t *testing.T) {
	ctx := context.Background()
	bp := &v1alpha1.BpfProgram{
		ObjectMeta: metav1.ObjectMeta{Name: "immutable-node-a"},
		Spec:       v1alpha1.BpfProgramSpec{NodeName: "node-a", ConfigName: "immutable"},
	}
	if err := testEnv.Client.Create(ctx, bp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testEnv.Client.Delete(ctx, bp) })
	for field, edit := range map[string]func(){
		"nodeName":   func() { bp.Spec.NodeName = "node-b" },
		"configName": func() { bp.Spec.ConfigName = "other" },
	} {
		t.Run(field, func(t *testing.T) {
			if err := testEnv.Client.Get(ctx, client.ObjectKeyFromObject(bp), bp); err != nil {
				t.Fatal(err)
			}
			edit()
			err := testEnv.Client.Update(ctx, bp)
			if err == nil || !strings.Contains(err.Error(), field+" is immutable") {
				t.Fatalf("got %v, want %s is immutable", err, field)
			}
		})
	}
}

func programs(n int) []v1alpha1.Program {
	ps := make([]v1alpha1.Program, n)
	for i := range ps {
		ps[i] = v1alpha1.Program{
			Name:       "p" + strings.Repeat("x", i),
			Type:       v1alpha1.ProgramTypeTracepoint,
			Tracepoint: &v1alpha1.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"},
		}
	}
	return ps
}
