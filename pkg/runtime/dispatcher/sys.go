package dispatcher

import (
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// objAttr is union bpf_attr for BPF_OBJ_PIN and BPF_OBJ_GET.
type objAttr struct {
	pathname  unsafe.Pointer
	bpfFd     uint32
	fileFlags uint32
}

// objPin pins the BPF object behind fd at path.
func objPin(fd int, path string) error {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return err
	}
	attr := objAttr{pathname: unsafe.Pointer(p), bpfFd: uint32(fd)}
	if _, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_OBJ_PIN, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr)); errno != 0 {
		return fmt.Errorf("pin %s: %w", path, errno)
	}
	return nil
}

// objGet opens the BPF object pinned at path; the caller closes the
// descriptor.
func objGet(path string) (int, error) {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return -1, err
	}
	attr := objAttr{pathname: unsafe.Pointer(p)}
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_OBJ_GET, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno != 0 {
		return -1, fmt.Errorf("open pin %s: %w", path, errno)
	}
	return int(fd), nil
}

// rcuGracePeriod is how long synchronizeRCU waits when the kernel cannot
// tell it: far longer than a packet takes through a program.
const rcuGracePeriod = 50 * time.Millisecond

// synchronizeRCU returns once every BPF program run that began before it was
// called has finished: XDP and TC programs run in RCU read-side critical
// sections, and membarrier(MEMBARRIER_CMD_GLOBAL) waits for an RCU grace
// period. Kernels with nohz_full CPUs refuse that command; then it sleeps.
func synchronizeRCU() {
	const membarrierCmdGlobal = 1 // MEMBARRIER_CMD_GLOBAL
	if _, _, errno := unix.Syscall(unix.SYS_MEMBARRIER, membarrierCmdGlobal, 0, 0); errno != 0 {
		time.Sleep(rcuGracePeriod)
	}
}
