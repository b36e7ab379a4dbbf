package maps

import "errors"

// Errors wrapped, with the volume or map they concern, by this package.
var (
	// ErrNotVolume: the directory is not a bpffs, so no volume of
	// csi.bpfd.io is mounted there (the pod's volumeMounts and the
	// application's flag disagree, or the volume is missing).
	ErrNotVolume = errors.New("not a bpffs volume of csi.bpfd.io")
	// ErrNotFound: the volume holds no map of that name; the pod's volume
	// asked for other maps (volumeAttributes.maps).
	ErrNotFound = errors.New("no such map in the volume")
	// ErrUnprivilegedBPFDisabled: the kernel refused the bpf() system call
	// to this process, which lacks CAP_BPF, because of the sysctl
	// kernel.unprivileged_bpf_disabled; kernels that check it for every
	// bpf() command do so.
	ErrUnprivilegedBPFDisabled = errors.New("the kernel refuses bpf() to unprivileged processes")
)
