package maps

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRefusalErrors: what Map says of each refusal of BPF_OBJ_GET. A kernel
// before 5.19, which refuses the open itself with EPERM to a process
// without CAP_BPF while kernel.unprivileged_bpf_disabled is set, does not
// run here (both test kernels, 6.1 and 6.18, let the open through), so its
// errno is given.
func TestRefusalErrors(t *testing.T) {
	v := &Volume{dir: t.TempDir()}
	// What the hint of a refused open describes: the pin's mode and owner.
	if err := os.WriteFile(v.dir+"/pinned", nil, 0o440); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		errno error
		is    error
		msg   string
	}{
		"EPERM: the sysctl": {unix.EPERM, ErrUnprivilegedBPFDisabled, "kernel.unprivileged_bpf_disabled="},
		"EACCES: the group": {unix.EACCES, fs.ErrPermission, "pin mode"},
		"ENOENT: no map":    {unix.ENOENT, ErrNotFound, "it holds pinned"},
	}
	// Each error also carries the kernel's errno, but the missing map's,
	// which names what the volume holds instead.
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := v.mapError("xdp_stats", v.dir+"/pinned", fmt.Errorf("load pinned map: %w", tc.errno))
			if !errors.Is(err, tc.is) || (tc.is != ErrNotFound && !errors.Is(err, tc.errno)) || !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "map xdp_stats: ") {
				t.Errorf("%v: want it to match %v and name %q", err, tc.is, tc.msg)
			}
		})
	}
}
