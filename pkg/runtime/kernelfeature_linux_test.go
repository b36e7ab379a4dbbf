package runtime_test

import (
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// requireKernelEnv names the environment variable that turns a test skipped
// for a missing kernel feature into a failed one: the VM runs, whose kernel
// has the feature, set it.
const requireKernelEnv = "BPFD_REQUIRE_KERNEL"

// requireKernelFeature skips t, with the reason, when probe fails, or fails
// it when BPFD_REQUIRE_KERNEL is set.
func requireKernelFeature(t *testing.T, feature string, probe func() error) {
	t.Helper()
	err := probe()
	if err == nil {
		return
	}
	if v := os.Getenv(requireKernelEnv); v != "" && v != "0" {
		t.Fatalf("kernel lacks %s: %v (required by %s=%s)", feature, err, requireKernelEnv, v)
	}
	t.Skipf("kernel lacks %s: %v", feature, err)
}

// probeAttach loads a trivial program of spec's type and attaches it with
// attach, then undoes both.
func probeAttach(spec *ebpf.ProgramSpec, attach func(*ebpf.Program) (link.Link, error)) error {
	spec.License = "GPL"
	spec.Instructions = asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
	prog, err := ebpf.NewProgram(spec)
	if err != nil {
		return err
	}
	defer prog.Close()
	l, err := attach(prog)
	if err != nil {
		return err
	}
	return l.Close()
}

func probeKprobe() error {
	return probeAttach(&ebpf.ProgramSpec{Type: ebpf.Kprobe}, func(p *ebpf.Program) (link.Link, error) {
		return link.Kprobe("do_unlinkat", p, nil)
	})
}

func probeFentry() error {
	return probeAttach(&ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: ebpf.AttachTraceFEntry, AttachTo: "do_unlinkat"}, func(p *ebpf.Program) (link.Link, error) {
		return link.AttachTracing(link.TracingOptions{Program: p})
	})
}
