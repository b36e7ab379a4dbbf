package maps

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// UnprivilegedBPFDisabledSysctl is the file of the sysctl
// kernel.unprivileged_bpf_disabled.
const UnprivilegedBPFDisabledSysctl = "/proc/sys/kernel/unprivileged_bpf_disabled"

// statVolume checks that dir is a bpffs and reports whether it is mounted
// read-only.
func statVolume(dir string) (readOnly bool, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false, err
	}
	if st.Type != unix.BPF_FS_MAGIC {
		return false, fmt.Errorf("%w (file system type %#x)", ErrNotVolume, st.Type)
	}
	return st.Flags&unix.ST_RDONLY != 0, nil
}

func isEPERM(err error) bool { return errors.Is(err, unix.EPERM) }

// writeRefused reports whether opening a pin for writing failed because the
// pin is not writable to this process (EACCES) or the volume is read-only
// (EROFS), so that opening it read-only may work.
func writeRefused(err error) bool { return errors.Is(err, unix.EACCES) || errors.Is(err, unix.EROFS) }

// unprivilegedHint says what the sysctl is set to and who may use bpf().
func unprivilegedHint() string {
	b, err := os.ReadFile(UnprivilegedBPFDisabledSysctl)
	v := strings.TrimSpace(string(b))
	if err != nil {
		v = "unreadable: " + err.Error()
	}
	return fmt.Sprintf("kernel.unprivileged_bpf_disabled=%s on kernel %s; this process has no CAP_BPF. "+
		"Kernels before 5.19 check the sysctl for every bpf() command and refuse even opening a pinned map; "+
		"later ones only creating maps and loading programs", v, release())
}

// permissionHint describes the pin's owner and mode and this process's
// groups, for a refused open.
func permissionHint(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return "permission denied"
	}
	groups, _ := os.Getgroups()
	sys, _ := st.Sys().(*syscall.Stat_t)
	if sys == nil {
		return fmt.Sprintf("pin mode %s", st.Mode().Perm())
	}
	return fmt.Sprintf("pin mode %s, uid %d, gid %d; this process runs as uid %d, gid %d, groups %v "+
		"(the pod's securityContext.fsGroup owns the volume's maps)",
		st.Mode().Perm(), sys.Uid, sys.Gid, os.Geteuid(), os.Getegid(), groups)
}

func release() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}
