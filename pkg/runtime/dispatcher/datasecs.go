package dispatcher

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"strings"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

// loadWithDatasecs loads prog, whose map references are bound, as
// ebpf.NewProgram would, except that the BTF it hands the kernel holds the
// object's data sections (from types) besides the functions of prog. libxdp
// tells its dispatcher by the variable dispatcher_version in the
// xdp_metadata section of the program's BTF, which no instruction refers to,
// so ebpf.NewProgram would leave it out.
func loadWithDatasecs(prog *ebpf.ProgramSpec, types *btf.Spec) (*ebpf.Program, error) {
	b, err := btf.NewBuilder(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("program BTF: %w", err)
	}
	funcInfo, lineInfo, err := btf.MarshalExtInfos(prog.Instructions, b)
	if err != nil {
		return nil, fmt.Errorf("program BTF: func and line info: %w", err)
	}
	for t := range types.All() {
		if ds, ok := t.(*btf.Datasec); ok {
			if _, err := b.Add(ds); err != nil {
				return nil, fmt.Errorf("program BTF: %s: %w", ds.Name, err)
			}
		}
	}
	handle, err := btf.NewHandle(b)
	if err != nil {
		return nil, fmt.Errorf("program BTF: load: %w", err)
	}
	defer handle.Close()

	var code bytes.Buffer
	if err := prog.Instructions.Marshal(&code, nativeEndian()); err != nil {
		return nil, fmt.Errorf("marshal instructions: %w", err)
	}
	license := append([]byte(prog.License), 0)
	attr := progLoadAttr{
		progType:           uint32(prog.Type),
		insnCnt:            uint32(code.Len() / asm.InstructionSize),
		insns:              pointer(code.Bytes()),
		license:            pointer(license),
		progFlags:          prog.Flags,
		expectedAttachType: uint32(prog.AttachType),
		progBTFFd:          uint32(handle.FD()),
		funcInfoRecSize:    btf.FuncInfoSize,
		funcInfo:           pointer(funcInfo),
		funcInfoCnt:        uint32(len(funcInfo)) / btf.FuncInfoSize,
		lineInfoRecSize:    btf.LineInfoSize,
		lineInfo:           pointer(lineInfo),
		lineInfoCnt:        uint32(len(lineInfo)) / btf.LineInfoSize,
	}
	copy(attr.progName[:unix.BPF_OBJ_NAME_LEN-1], prog.Name)

	fd, err := progLoad(&attr)
	if err != nil {
		// Load again with the verifier's log for the error.
		logBuf := make([]byte, 1<<20)
		attr.logLevel, attr.logSize, attr.logBuf = 1, uint32(len(logBuf)), pointer(logBuf)
		if fd2, err2 := progLoad(&attr); err2 != nil {
			err = fmt.Errorf("%w: %s", err, logTail(logBuf))
		} else {
			unix.Close(fd2)
		}
		return nil, fmt.Errorf("load program %s: %w", prog.Name, err)
	}
	p, err := ebpf.NewProgramFromFD(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return p, nil
}

// nativeEndian returns the machine's byte order as one of binary's two
// (asm.Instructions.Marshal takes no other).
func nativeEndian() binary.ByteOrder {
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		return binary.LittleEndian
	}
	return binary.BigEndian
}

// progLoadAttr is the head of union bpf_attr for BPF_PROG_LOAD, up to the
// fields this package sets; the kernel treats the rest as zero. Its
// pointers are the kernel's __aligned_u64 on 64-bit machines: Go keeps what
// they point at alive and in place.
type progLoadAttr struct {
	progType           uint32
	insnCnt            uint32
	insns              unsafe.Pointer
	license            unsafe.Pointer
	logLevel           uint32
	logSize            uint32
	logBuf             unsafe.Pointer
	kernVersion        uint32
	progFlags          uint32
	progName           [unix.BPF_OBJ_NAME_LEN]byte
	progIfindex        uint32
	expectedAttachType uint32
	progBTFFd          uint32
	funcInfoRecSize    uint32
	funcInfo           unsafe.Pointer
	funcInfoCnt        uint32
	lineInfoRecSize    uint32
	lineInfo           unsafe.Pointer
	lineInfoCnt        uint32
}

// The kernel's pointers are 64 bits wide: this fails to compile elsewhere.
var _ [unsafe.Sizeof(unsafe.Pointer(nil)) - 8]struct{}

// pointer returns the address of b's first byte, nil for none.
func pointer(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

func progLoad(attr *progLoadAttr) (int, error) {
	for {
		fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(attr)), unsafe.Sizeof(*attr))
		runtime.KeepAlive(attr)
		switch {
		case errno == unix.EINTR || errno == unix.EAGAIN:
			continue
		case errno != 0:
			return -1, errno
		}
		return int(fd), nil
	}
}

// logTail returns the last lines of a verifier log.
func logTail(log []byte) string {
	if i := bytes.IndexByte(log, 0); i >= 0 {
		log = log[:i]
	}
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	if len(lines) > 6 {
		lines = lines[len(lines)-6:]
	}
	return strings.Join(lines, " | ")
}
