package inventory_test

import (
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/runtime/inventory"
)

// TestTracingLinks describes the links of kprobes, kretprobes, fentry,
// fexit and freplace programs by the functions they attach to, read from
// the kernel's BTF and the target program's. They run where the kernel
// has these hooks (the test VM).
func TestTracingLinks(t *testing.T) {
	testutil.RequirePrivileged(t)
	cases := map[string]struct {
		feature testutil.KernelFeature
		attach  func(t *testing.T) (link.Link, inventory.Attachment)
	}{
		"kprobe": {
			feature: testutil.FeatureKprobe,
			attach: func(t *testing.T) (link.Link, inventory.Attachment) {
				p := loadProgram(t, ebpf.Kprobe, ebpf.AttachNone, 0)
				l, err := link.Kprobe("do_unlinkat", p, nil)
				if err != nil {
					t.Fatal(err)
				}
				return l, inventory.Attachment{Hook: inventory.HookKprobe, Function: "do_unlinkat"}
			},
		},
		"kretprobe": {
			feature: testutil.FeatureKretprobe,
			attach: func(t *testing.T) (link.Link, inventory.Attachment) {
				p := loadProgram(t, ebpf.Kprobe, ebpf.AttachNone, 0)
				l, err := link.Kretprobe("do_unlinkat", p, nil)
				if err != nil {
					t.Fatal(err)
				}
				return l, inventory.Attachment{Hook: inventory.HookKretprobe, Function: "do_unlinkat"}
			},
		},
		"fentry": {
			feature: testutil.FeatureFentry,
			attach: func(t *testing.T) (link.Link, inventory.Attachment) {
				coll := loadCollection(t, "fentry_counter")
				l, err := link.AttachTracing(link.TracingOptions{Program: coll.Programs["fentry_counter"]})
				if err != nil {
					t.Fatal(err)
				}
				return l, inventory.Attachment{Hook: inventory.HookTracing, AttachType: "TraceFEntry", Function: "do_unlinkat"}
			},
		},
		"fexit": {
			feature: testutil.FeatureFexit,
			attach: func(t *testing.T) (link.Link, inventory.Attachment) {
				coll := loadCollection(t, "fentry_counter")
				l, err := link.AttachTracing(link.TracingOptions{Program: coll.Programs["fexit_counter"]})
				if err != nil {
					t.Fatal(err)
				}
				return l, inventory.Attachment{Hook: inventory.HookTracing, AttachType: "TraceFExit", Function: "do_unlinkat"}
			},
		},
		"freplace": {
			feature: testutil.FeatureFreplace,
			attach: func(t *testing.T) (link.Link, inventory.Attachment) {
				target := loadCollection(t, "freplace_target").Programs["freplace_target"]
				extSpec := bytecodeSpec(t, "freplace_ext")
				extSpec.Programs["freplace_ext"].AttachTarget = target
				coll, err := ebpf.NewCollection(extSpec)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(coll.Close)
				l, err := link.AttachFreplace(target, "decide", coll.Programs["freplace_ext"])
				if err != nil {
					t.Fatal(err)
				}
				return l, inventory.Attachment{Hook: inventory.HookTracing, AttachType: "Extension", Function: "decide", TargetProgramID: programID(t, target)}
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			testutil.RequireKernelFeature(t, tc.feature)
			l, want := tc.attach(t)
			defer l.Close()
			info, err := l.Info()
			if err != nil {
				t.Fatal(err)
			}
			want = kernelReports(info, want)
			got := linkByID(t, scan(t, inventory.Options{}), uint32(info.ID))
			// The kernel shows a kprobe's address only to those who may
			// read kernel addresses; the count of missed runs varies.
			if diff := cmp.Diff(want, got.Attach, cmpopts.IgnoreFields(inventory.Attachment{}, "Address", "Missed")); diff != "" {
				t.Errorf("link %d attachment (-want +got):\n%s", got.ID, diff)
			}
		})
	}
}

func bytecodeSpec(t *testing.T, name string) *ebpf.CollectionSpec {
	t.Helper()
	root, err := testutil.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ebpf.LoadCollectionSpec(filepath.Join(root, "bytecode", name+".bpf.o"))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// loadCollection loads bytecode/<name>.bpf.o until the test ends.
func loadCollection(t *testing.T, name string) *ebpf.Collection {
	t.Helper()
	coll, err := ebpf.NewCollection(bytecodeSpec(t, name))
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	t.Cleanup(coll.Close)
	return coll
}
