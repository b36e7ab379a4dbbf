package v1alpha1

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
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
		want         string
	}{
		"short":      {config: "xdp-counter", node: "worker-1", want: "xdp-counter-worker-1"},
		"dotted":     {config: "xdp.counter", node: "worker-1.example.com", want: "xdp.counter-worker-1.example.com"},
		"long":       {config: strings.Repeat("c", 200), node: strings.Repeat("n", 100)},
		"long, dots": {config: strings.Repeat("c", 200), node: strings.Repeat("n", 42) + "." + strings.Repeat("m", 50)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := BpfProgramName(tc.config, tc.node)
			if tc.want != "" && got != tc.want {
				t.Errorf("BpfProgramName = %q, want %q", got, tc.want)
			}
			if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
				t.Errorf("BpfProgramName = %q, not a valid name: %v", got, errs)
			}
		})
	}
	if BpfProgramName(strings.Repeat("c", 200), strings.Repeat("n", 100)) == BpfProgramName(strings.Repeat("c", 200), strings.Repeat("n", 101)) {
		t.Error("long names that differ share a BpfProgram name")
	}
}
