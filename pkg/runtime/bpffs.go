package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Pin layout under the bpffs directory (default /run/bpfd/fs):
//
//	<bpffs>/<id>/program      the program
//	<bpffs>/<id>/link         its BPF link (every kind but tc, whose netlink
//	                          filter cannot be pinned)
//	<bpffs>/<id>/maps/<name>  every map of the program's object, by its
//	                          name there with dots made underscores (the
//	                          bpffs refuses dots): "_rodata", "_bss" for
//	                          globals; maps shared with other programs are
//	                          pinned in each program's directory, so
//	                          unloading one never pulls maps from under
//	                          another
//	<bpffs>/dispatchers/<hook>/  the chain of an XDP or TC hook, pinned by
//	                          its dispatcher (package dispatcher; Open makes
//	                          the dispatchers directory); a program
//	                          in a chain has its maps under <id>/maps and,
//	                          in freplace mode, its extension program at
//	                          <id>/program, but no link of its own
//
// Other directory names that are not ids are left alone.
const (
	pinProgram = "program"
	pinLink    = "link"
	pinMaps    = "maps"
)

// DefaultBPFFS is the bpffs directory the Manager pins under by default.
const DefaultBPFFS = "/run/bpfd/fs"

// DefaultStateDir is the directory of the state store by default.
const DefaultStateDir = "/var/lib/bpfd"

func (m *Manager) programDir(id ID) string { return filepath.Join(m.bpffs, id.String()) }

func (m *Manager) programPin(id ID) string {
	return filepath.Join(m.programDir(id), pinProgram)
}

func (m *Manager) linkPin(id ID) string { return filepath.Join(m.programDir(id), pinLink) }

func (m *Manager) mapsDir(id ID) string { return filepath.Join(m.programDir(id), pinMaps) }

func (m *Manager) mapPin(id ID, name string) string {
	return filepath.Join(m.mapsDir(id), strings.ReplaceAll(name, ".", "_"))
}

// ensureBPFFS makes dir a bpffs mount point: it creates dir and mounts a
// bpffs there unless one is already mounted. It returns whether it mounted.
func ensureBPFFS(dir string) (bool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("bpffs %s: %w", dir, err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return false, fmt.Errorf("bpffs %s: %w", dir, err)
	}
	if fs.Type == unix.BPF_FS_MAGIC {
		return false, nil
	}
	if err := unix.Mount("bpffs", dir, "bpf", 0, "mode=0700"); err != nil {
		return false, fmt.Errorf("bpffs %s: mount: %w", dir, err)
	}
	return true, nil
}

// onBPFFS reports whether dir is on a bpffs.
func onBPFFS(dir string) bool {
	var fs unix.Statfs_t
	return unix.Statfs(dir, &fs) == nil && fs.Type == unix.BPF_FS_MAGIC
}

// removePins removes a program's pin directory; one already gone is fine.
// Removing the pins drops the references they hold: an unpinned link whose
// last descriptor is closed detaches.
func removePins(dir string) error {
	err := os.RemoveAll(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove pins %s: %w", dir, err)
	}
	return nil
}

// ensureTracefs mounts tracefs at /sys/kernel/tracing when no tracefs is
// mounted where the kernel's tracing files are looked for; tracepoints need
// it to find their event ids. It reports whether it mounted.
func ensureTracefs() (bool, error) {
	for _, dir := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		var fs unix.Statfs_t
		if unix.Statfs(dir, &fs) == nil && (fs.Type == unix.TRACEFS_MAGIC || fs.Type == unix.DEBUGFS_MAGIC) {
			return false, nil
		}
	}
	if err := unix.Mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil {
		return false, fmt.Errorf("mount tracefs at /sys/kernel/tracing: %w", err)
	}
	return true, nil
}
