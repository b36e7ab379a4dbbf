package v1alpha1

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
)

func TestNodeFinalizer(t *testing.T) {
	long := strings.Repeat("worker-", 20) + "1.example.com"
	cases := map[string]struct {
		node string
		want string
	}{
		"short":        {node: "worker-1", want: "nodes.bpfd.io/worker-1"},
		"63 chars":     {node: strings.Repeat("a", 63), want: "nodes.bpfd.io/" + strings.Repeat("a", 63)},
		"long":         {node: long},
		"long, dotted": {node: strings.Repeat("a", 52) + "." + strings.Repeat("b", 40)},
	}
	seen := map[string]string{}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := NodeFinalizer(tc.node)
			if tc.want != "" && got != tc.want {
				t.Errorf("NodeFinalizer(%q) = %q, want %q", tc.node, got, tc.want)
			}
			if errs := validation.IsQualifiedName(got); len(errs) > 0 {
				t.Errorf("NodeFinalizer(%q) = %q, not a qualified name: %v", tc.node, got, errs)
			}
			if other, ok := seen[got]; ok {
				t.Errorf("nodes %q and %q share finalizer %q", tc.node, other, got)
			}
			seen[got] = tc.node
		})
	}
}

func TestBpfProgramName(t *testing.T) {
	cases := map[string]struct {
		config, node string
		wantPrefix   string
	}{
		"short":               {config: "xdp-counter", node: "worker-1", wantPrefix: "xdp-counter-worker-1-"},
		"dashes one way":      {config: "a-b", node: "c", wantPrefix: "a-b-c-"},
		"dashes the other":    {config: "a", node: "b-c", wantPrefix: "a-b-c-"},
		"dotted":              {config: "xdp.counter", node: "worker-1.example.com", wantPrefix: "xdp.counter-worker-1.example.com-"},
		"long":                {config: strings.Repeat("c", 200), node: strings.Repeat("n", 100)},
		"long, one more char": {config: strings.Repeat("c", 200), node: strings.Repeat("n", 101)},
		"long, dots":          {config: strings.Repeat("c", 200), node: strings.Repeat("n", 19) + "." + strings.Repeat("m", 50)},
		"longest":             {config: strings.Repeat("c", 253), node: strings.Repeat("n", 253)},
		"longest, other node": {config: strings.Repeat("c", 253), node: strings.Repeat("n", 252) + "m"},
	}
	seen := map[string]string{}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := BpfProgramName(tc.config, tc.node)
			if tc.wantPrefix != "" && (!strings.HasPrefix(got, tc.wantPrefix) || len(got) != len(tc.wantPrefix)+BpfProgramHashLen) {
				t.Errorf("BpfProgramName = %q, want %q and %d hex digits", got, tc.wantPrefix, BpfProgramHashLen)
			}
			if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
				t.Errorf("BpfProgramName = %q, not a valid name: %v", got, errs)
			}
			if got != BpfProgramName(tc.config, tc.node) {
				t.Error("BpfProgramName is not deterministic")
			}
			if other, ok := seen[got]; ok {
				t.Errorf("%s and %s share BpfProgram name %q", name, other, got)
			}
			seen[got] = name
			for _, l := range BpfProgramLabels(tc.config, tc.node, "0b5ad2d1-4b32-4c41-8e8f-05d2b7c5e0a1") {
				if errs := validation.IsValidLabelValue(l); len(errs) > 0 {
					t.Errorf("label value %q: %v", l, errs)
				}
			}
		})
	}
}

func TestLabelValue(t *testing.T) {
	long := strings.Repeat("a", 60) + "-" + strings.Repeat("b", 10)
	cases := map[string]struct {
		name, want string
	}{
		"short":    {name: "worker-1", want: "worker-1"},
		"63 chars": {name: strings.Repeat("a", 63), want: strings.Repeat("a", 63)},
		"long":     {name: long},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := LabelValue(tc.name)
			if tc.want != "" && got != tc.want {
				t.Errorf("LabelValue(%q) = %q, want %q", tc.name, got, tc.want)
			}
			if errs := validation.IsValidLabelValue(got); len(errs) > 0 {
				t.Errorf("LabelValue(%q) = %q: %v", tc.name, got, errs)
			}
		})
	}
	if LabelValue(long) == LabelValue(long+"c") {
		t.Error("long names that differ share a label value")
	}
}

// TestReports: only the object with the canonical name, the spec of the
// pair and the config as its controller is a node's report.
func TestReports(t *testing.T) {
	const uid = types.UID("uid-1")
	good := func() *BpfProgram {
		return &BpfProgram{
			ObjectMeta: metav1.ObjectMeta{Name: BpfProgramName("cfg", "node-a"), OwnerReferences: []metav1.OwnerReference{{
				APIVersion: GroupVersion.String(), Kind: "BpfProgramConfig", Name: "cfg", UID: uid, Controller: ptr.To(true),
			}}},
			Spec: BpfProgramSpec{ConfigName: "cfg", NodeName: "node-a"},
		}
	}
	cases := map[string]struct {
		edit func(*BpfProgram)
		want bool
	}{
		"canonical":                 {edit: func(*BpfProgram) {}, want: true},
		"legacy name":               {edit: func(bp *BpfProgram) { bp.Name = "cfg-node-a" }},
		"another node's spec":       {edit: func(bp *BpfProgram) { bp.Spec.NodeName = "node-b" }},
		"another config's spec":     {edit: func(bp *BpfProgram) { bp.Spec.ConfigName = "cfg2" }},
		"another config's uid":      {edit: func(bp *BpfProgram) { bp.OwnerReferences[0].UID = "uid-2" }},
		"owner but not controller":  {edit: func(bp *BpfProgram) { bp.OwnerReferences[0].Controller = nil }},
		"no owner":                  {edit: func(bp *BpfProgram) { bp.OwnerReferences = nil }},
		"owner of another kind":     {edit: func(bp *BpfProgram) { bp.OwnerReferences[0].Kind = "ConfigMap" }},
		"owner of another group":    {edit: func(bp *BpfProgram) { bp.OwnerReferences[0].APIVersion = "example.com/v1" }},
		"owner of a later version":  {edit: func(bp *BpfProgram) { bp.OwnerReferences[0].APIVersion = "bpfd.io/v1beta1" }, want: true},
		"labels of another node":    {edit: func(bp *BpfProgram) { bp.Labels = map[string]string{LabelNode: "node-b"} }, want: true},
		"name of the other reading": {edit: func(bp *BpfProgram) { bp.Name = BpfProgramName("cfg-node", "a") }},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			bp := good()
			tc.edit(bp)
			if got := bp.Reports("cfg", uid, "node-a"); got != tc.want {
				t.Errorf("Reports = %v, want %v", got, tc.want)
			}
		})
	}
}
