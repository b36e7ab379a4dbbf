package inventory

import (
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// btfNames names the functions trampolines attach to, from the BTF of the
// kernel, its modules or the target program, read once per scan.
type btfNames struct {
	// specs are BTF by object id; programs' BTF by program id.
	specs     map[uint32]*btf.Spec
	progSpecs map[uint32]*btf.Spec
	// kernel reports, by BTF object id, whether it is the kernel's or a
	// module's.
	kernel map[uint32]bool
}

func newBTFNames() *btfNames {
	return &btfNames{specs: map[uint32]*btf.Spec{}, progSpecs: map[uint32]*btf.Spec{}, kernel: map[uint32]bool{}}
}

// target returns the function a tracing link of a progType program
// attaches to, by the object id and BTF type id the kernel reports, and the
// target program when the object is a program: always for extension
// programs, and for fentry/fexit whose object is no kernel BTF.
func (b *btfNames) target(progType ebpf.ProgramType, objID, typeID uint32) (function string, targetProg uint32) {
	if objID == 0 {
		return "", 0
	}
	if progType != ebpf.Extension && b.isKernel(objID) {
		return funcName(b.kernelSpec(objID), typeID), 0
	}
	return funcName(b.programSpec(objID), typeID), objID
}

func (b *btfNames) isKernel(objID uint32) bool {
	if k, ok := b.kernel[objID]; ok {
		return k
	}
	k := false
	if h, err := btf.NewHandleFromID(btf.ID(objID)); err == nil {
		if info, err := h.Info(); err == nil {
			k = info.IsKernel
		}
		h.Close()
	}
	b.kernel[objID] = k
	return k
}

// kernelSpec returns the BTF of the kernel or module objID; nil if it
// cannot be read.
func (b *btfNames) kernelSpec(objID uint32) *btf.Spec {
	if s, ok := b.specs[objID]; ok {
		return s
	}
	var spec *btf.Spec
	h, err := btf.NewHandleFromID(btf.ID(objID))
	if err == nil {
		defer h.Close()
		if info, err := h.Info(); err == nil {
			if info.IsVmlinux() {
				spec, _ = btf.LoadKernelSpec()
			} else if base, err := btf.LoadKernelSpec(); err == nil {
				spec, _ = h.Spec(base)
			}
		}
	}
	b.specs[objID] = spec
	return spec
}

// programSpec returns the BTF of program id; nil if it cannot be read.
func (b *btfNames) programSpec(id uint32) *btf.Spec {
	if s, ok := b.progSpecs[id]; ok {
		return s
	}
	var spec *btf.Spec
	if p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id)); err == nil {
		if h, err := p.Handle(); err == nil {
			spec, _ = h.Spec(nil)
			h.Close()
		}
		p.Close()
	}
	b.progSpecs[id] = spec
	return spec
}

func funcName(spec *btf.Spec, typeID uint32) string {
	if spec == nil || typeID == 0 {
		return ""
	}
	t, err := spec.TypeByID(btf.TypeID(typeID))
	if err != nil {
		return ""
	}
	return t.TypeName()
}
