package depcheck

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/bpfd-dev/bpfd"

// forbidden lists, for each package pattern, the import path prefixes none of
// its packages may depend on, directly or through others.
var forbidden = map[string][]string{
	// The cluster side carries references and attach intent; it never pulls,
	// verifies or loads.
	"./pkg/k8s/...":       {"oras.land/", "github.com/sigstore/", "github.com/cilium/ebpf", module + "/pkg/artifact", module + "/pkg/verify", module + "/pkg/runtime"},
	"./cmd/bpfd-agent":    {"oras.land/", "github.com/sigstore/", "github.com/cilium/ebpf", module + "/pkg/artifact", module + "/pkg/verify", module + "/pkg/runtime"},
	"./cmd/bpfd-operator": {"oras.land/", "github.com/sigstore/", "github.com/cilium/ebpf", module + "/pkg/artifact", module + "/pkg/verify", module + "/pkg/runtime"},
	// Siblings: cmd/ wires them together.
	"./pkg/artifact/...": {module + "/pkg/verify", module + "/pkg/runtime"},
	"./pkg/verify/...":   {module + "/pkg/artifact", module + "/pkg/runtime"},
	"./pkg/runtime/...":  {module + "/pkg/artifact", module + "/pkg/verify"},
	// Applications import the maps library alone: cilium/ebpf and the
	// standard library, no Kubernetes, gRPC, daemon, registry or signing
	// code.
	"./pkg/maps/...": {"k8s.io/", "sigs.k8s.io/", "google.golang.org/grpc", "google.golang.org/protobuf", "oras.land/", "github.com/sigstore/",
		"github.com/opencontainers/", "github.com/prometheus/", module + "/internal/", module + "/pkg/k8s", module + "/pkg/runtime",
		module + "/pkg/artifact", module + "/pkg/verify", module + "/proto"},
	// Application operators and agents import the API types and a
	// controller-runtime client: nothing of bpfd's controllers, daemon or
	// gRPC API, no bytecode, registry or signing code.
	"./pkg/k8s/appclient/...": {"google.golang.org/grpc", "oras.land/", "github.com/sigstore/", "github.com/cilium/ebpf",
		module + "/internal/", module + "/pkg/k8s/controller", module + "/pkg/runtime", module + "/pkg/artifact",
		module + "/pkg/verify", module + "/proto"},
	// The example application's user-space half: package maps and a
	// metrics library, nothing of Kubernetes, gRPC or bpfd itself.
	"./examples/xdp-counter": {"k8s.io/", "sigs.k8s.io/", "google.golang.org/grpc", "oras.land/", "github.com/sigstore/",
		module + "/internal/", module + "/pkg/k8s", module + "/pkg/runtime", module + "/pkg/artifact", module + "/pkg/verify", module + "/proto"},
	// The node's side of a pod: bpfd-agent links it, so it carries nothing
	// the agent may not (BPF, registry, signing), and it is a library of its
	// own: no Kubernetes, gRPC or daemon code either.
	"./pkg/podproc/...": {"k8s.io/", "sigs.k8s.io/", "google.golang.org/grpc", "google.golang.org/protobuf", "oras.land/",
		"github.com/sigstore/", "github.com/cilium/ebpf", "github.com/opencontainers/", module + "/internal/", module + "/pkg/k8s",
		module + "/pkg/runtime", module + "/pkg/artifact", module + "/pkg/verify", module + "/proto"},
	// The load path goes one way: the daemon has the supply chain resolve,
	// pull and verify, then hands what it admitted to the runtime. The
	// supply chain never loads and never speaks the API.
	"./internal/supplychain/...": {module + "/pkg/runtime", module + "/internal/daemon", module + "/proto/",
		module + "/internal/testing/"},
	// bpfctl starts fast: no Kubernetes client libraries.
	"./cmd/bpfctl": {"k8s.io/", "sigs.k8s.io/"},
	// Libraries stand on their own: plumbing a pkg/ package needs lives under
	// it (pkg/runtime/internal/...), never in the module's internal/.
	"./pkg/...": {module + "/internal/"},
	// Test support is for tests: no binary or plumbing links it. Nor do
	// binaries link what only the OLM bundle's generator and the SCC checks
	// use (hack/bundle, internal/testing/scctest).
	"./cmd/...":                    {module + "/internal/testing/", "github.com/operator-framework/", "github.com/openshift/"},
	"./internal/daemon/...":        {module + "/internal/testing/"},
	"./internal/csi/...":           {module + "/internal/testing/"},
	"./internal/cliutil/...":       {module + "/internal/testing/"},
	"./internal/controllercmd/...": {module + "/internal/testing/"},
}

func TestDependencies(t *testing.T) {
	for pattern, prefixes := range forbidden {
		t.Run(pattern, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "../../"+strings.TrimPrefix(pattern, "./")).CombinedOutput()
			if err != nil {
				t.Fatalf("go list %s: %v\n%s", pattern, err, out)
			}
			for _, dep := range strings.Fields(string(out)) {
				for _, p := range prefixes {
					if matches(dep, p) {
						t.Errorf("%s depends on %s, which it must not import", pattern, dep)
					}
				}
			}
		})
	}
}

// matches reports whether the import path dep is the package or module path p
// or lies below it; a p ending in "/" matches everything under that host.
func matches(dep, p string) bool {
	if strings.HasSuffix(p, "/") {
		return strings.HasPrefix(dep, p)
	}
	return dep == p || strings.HasPrefix(dep, p+"/")
}

// startCost lists, for each binary, the import path prefixes it must not
// link when built as the Makefile builds it (with its build tags): each
// would add package initialisation that every start pays for and no
// command uses.
var startCost = map[string][]string{
	"./cmd/bpfctl": {"github.com/russross/blackfriday", "github.com/cpuguy83/go-md2man", "golang.org/x/net/trace", "html/template"},
}

func TestStartCost(t *testing.T) {
	tags, err := exec.Command("make", "-s", "--no-print-directory", "-C", "../..", "print-tags").Output()
	if err != nil {
		t.Fatalf("make print-tags: %v", err)
	}
	for pattern, prefixes := range startCost {
		t.Run(pattern, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "-tags", strings.Join(strings.Fields(string(tags)), ","), "../../"+strings.TrimPrefix(pattern, "./")).CombinedOutput()
			if err != nil {
				t.Fatalf("go list %s: %v\n%s", pattern, err, out)
			}
			for _, dep := range strings.Fields(string(out)) {
				for _, p := range prefixes {
					if matches(dep, p) {
						t.Errorf("%s built with tags %q links %s, which every start initialises and no command uses", pattern, strings.TrimSpace(string(tags)), dep)
					}
				}
			}
		})
	}
}
