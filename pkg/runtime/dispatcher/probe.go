package dispatcher

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// ProbeFreplace reports whether freplace mode works on this kernel, by doing
// it once: it loads the XDP dispatcher with one slot, replaces the slot's
// stub with an extension program that drops, and runs the dispatcher with
// BPF_PROG_TEST_RUN. It returns nil when the packet was dropped, else why
// not, wrapping ErrUnsupported. The answer is computed once per process.
func ProbeFreplace() error { return probeFreplace() }

var probeFreplace = sync.OnceValue(func() error {
	if err := tryFreplace(); err != nil {
		return fmt.Errorf("extension programs: %w (%w)", ErrUnsupported, err)
	}
	return nil
})

func tryFreplace() error {
	specs, err := freplaceSpecs()
	if err != nil {
		return err
	}
	var stub0 *btf.Func
	if err := specs[freplaceKey{progtype.XDP, false}].Types.TypeByName(stub(0), &stub0); err != nil {
		return fmt.Errorf("dispatcher BTF: %w", err)
	}
	slot := Member{ID: 1, Name: "probe", Priority: MinPriority, ProceedOn: DefaultProceedOn(progtype.XDP)}
	disp, _, err := loadFreplaceDispatcher(freplaceKey{progtype.XDP, false}, []Member{slot}, 0)
	if err != nil {
		return err
	}
	defer disp.Close()

	const xdpDrop = 1
	insns := asm.Instructions{asm.Mov.Imm(asm.R0, xdpDrop), asm.Return()}
	insns[0] = btf.WithFuncMetadata(insns[0], &btf.Func{Name: "probe", Type: stub0.Type, Linkage: btf.GlobalFunc})
	insns[0] = insns[0].WithSource(asm.Comment("freplace probe"))
	ext, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "probe", Type: ebpf.Extension, License: "GPL", Instructions: insns,
		AttachTarget: disp, AttachTo: stub(0),
	})
	if errors.Is(err, unix.EPERM) {
		// Not about memory limits, whatever the library suggests.
		return fmt.Errorf("load an extension program: %w", unix.EPERM)
	}
	if err != nil {
		return fmt.Errorf("load an extension program: %w", err)
	}
	defer ext.Close()
	l, err := link.AttachFreplace(disp, stub(0), ext)
	if err != nil {
		return fmt.Errorf("attach an extension program: %w", err)
	}
	defer l.Close()
	ret, err := disp.Run(&ebpf.RunOptions{Data: make([]byte, 64)})
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if ret != xdpDrop {
		return fmt.Errorf("the dispatcher returned %d, not the extension's %d", ret, xdpDrop)
	}
	return nil
}
