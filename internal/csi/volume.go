package csi

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/pkg/maps"
)

// Modes of what a volume holds.
const (
	// dirMode lets the volume's group list the maps but not add or remove
	// pins.
	dirMode fs.FileMode = 0o550
	// pinMode and writablePinMode are the modes of the pins of a read-only
	// and of a writable volume.
	pinMode         fs.FileMode = 0o440
	writablePinMode fs.FileMode = 0o660
	// mountFlags are the flags of every mount the driver makes.
	mountFlags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	// maxStackedMounts bounds how many mounts at one target unpublish
	// removes.
	maxStackedMounts = 8
)

// refusedTypes are the map types a pod never gets: their entries are
// programs or maps, which would let it reach beyond the config's data.
var refusedTypes = []ebpf.MapType{ebpf.ProgramArray, ebpf.ArrayOfMaps, ebpf.HashOfMaps, ebpf.StructOpsMap}

// source is a map to publish, opened from bpfd's pin.
type source struct {
	name string // the map's name in its object
	pin  string // its pin's name in the volume
	m    *ebpf.Map
	id   ebpf.MapID
}

// volumeSpec is what a volume holds.
type volumeSpec struct {
	gid      uint32
	writable bool
	maps     []source
}

func (v *volumeSpec) pinMode() fs.FileMode {
	if v.writable {
		return writablePinMode
	}
	return pinMode
}

func (v *volumeSpec) close() {
	for _, s := range v.maps {
		s.m.Close()
	}
}

// openSources opens bpfd's pins of the named maps of the config (every map
// that may be given to a pod when names is nil), checking that each pin
// holds the map bpfd recorded. Maps of a refused type are an error when
// named and left out otherwise.
func openSources(c *configMaps, names []string) (_ []source, err error) {
	explicit := names != nil
	if !explicit {
		names = c.names()
	}
	var srcs []source
	defer func() {
		if err != nil {
			for _, s := range srcs {
				s.m.Close()
			}
		}
	}()
	pins := map[string]string{}
	for _, name := range names {
		rec, ok := c.maps[name]
		if !ok {
			return nil, fmt.Errorf("%s: %w: no map %s (its maps: %s)", c, ErrNotFound, name, listOrNone(c.names()))
		}
		pin := maps.PinName(name)
		if other, clash := pins[pin]; clash {
			return nil, fmt.Errorf("%s: %w: maps %s and %s would both be pinned as %s", c, ErrInvalid, other, name, pin)
		}
		pins[pin] = name
		m, err := openPin(rec.PinPath)
		if err != nil {
			return nil, fmt.Errorf("%s: map %s: %w", c, name, err)
		}
		info, err := m.Info()
		id, ok := ebpf.MapID(0), false
		if err == nil {
			id, ok = info.ID()
		}
		if !ok || uint32(id) != rec.ID {
			m.Close()
			return nil, fmt.Errorf("%s: map %s: %w: bpfd's pin %s holds map %d, bpfd recorded %d", c, name, ErrPrecondition, rec.PinPath, id, rec.ID)
		}
		if slices.Contains(refusedTypes, m.Type()) {
			m.Close()
			if explicit {
				return nil, fmt.Errorf("%s: map %s: %w: a %s holds programs or maps, which a pod may not reach", c, name, ErrDenied, m.Type())
			}
			continue
		}
		srcs = append(srcs, source{name: name, pin: pin, m: m, id: id})
	}
	if len(srcs) == 0 {
		return nil, fmt.Errorf("%s: %w: none of its maps may be given to a pod", c, ErrNotFound)
	}
	return srcs, nil
}

// openPin opens, read-only, the map pinned at path, as a Map that knows
// of no pin: cilium/ebpf's Pin of a Map loaded from a pin moves that pin,
// and bpfd's pins must stay where they are.
func openPin(path string) (*ebpf.Map, error) {
	pinned, err := ebpf.LoadPinnedMap(path, &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer pinned.Close()
	return pinned.Clone()
}

// publish mounts at target a new bpffs directory holding spec's maps:
// the maps are pinned in a bpffs mounted in a directory of its own under
// staging (whose root also holds the kernel's iterators), given to the
// group, the file system made read-only unless the volume is writable, and
// only that directory is mounted at target. On error nothing stays
// mounted, and target is removed if publish made it.
func publish(staging, target string, spec *volumeSpec) (err error) {
	made := false
	if err := os.Mkdir(target, 0o750); err == nil {
		made = true
	} else if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("target_path %s: %w", target, err)
	}
	defer func() {
		if err != nil && made {
			os.Remove(target)
		}
	}()
	stage, err := os.MkdirTemp(staging, "volume-")
	if err != nil {
		return fmt.Errorf("staging: %w", err)
	}
	defer os.Remove(stage)
	if err := unix.Mount("bpffs", stage, "bpf", mountFlags, "mode=0700"); err != nil {
		return fmt.Errorf("mount a bpffs on %s: %w", stage, err)
	}
	// Once the directory is mounted at the target, that mount holds the
	// file system; the staging mount goes either way.
	defer unix.Unmount(stage, unix.MNT_DETACH)
	dir := filepath.Join(stage, "maps")
	if err := os.Mkdir(dir, dirMode); err != nil {
		return fmt.Errorf("staging: %w", err)
	}
	for _, s := range spec.maps {
		path := filepath.Join(dir, s.pin)
		if err := s.m.Pin(path); err != nil {
			return fmt.Errorf("pin map %s: %w", s.name, err)
		}
		if err := giveTo(path, spec.gid, spec.pinMode()); err != nil {
			return fmt.Errorf("pin of map %s: %w", s.name, err)
		}
	}
	if err := giveTo(dir, spec.gid, dirMode); err != nil {
		return fmt.Errorf("volume directory: %w", err)
	}
	flags := uintptr(mountFlags)
	if !spec.writable {
		flags |= unix.MS_RDONLY
		if err := unix.Mount("", stage, "", unix.MS_REMOUNT|flags, ""); err != nil {
			return fmt.Errorf("make the volume's bpffs read-only: %w", err)
		}
	}
	if err := unix.Mount(dir, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("mount the volume at %s: %w", target, err)
	}
	if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|flags, ""); err != nil {
		unix.Unmount(target, unix.MNT_DETACH)
		return fmt.Errorf("mount flags of the volume at %s: %w", target, err)
	}
	return nil
}

// giveTo makes path owned by root and gid, with mode.
func giveTo(path string, gid uint32, mode fs.FileMode) error {
	if err := os.Chown(path, 0, int(gid)); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

// published reports whether target holds a bpffs, and if so whether it
// holds exactly what spec says: the same pins of the same maps, group,
// modes and read-only state.
func published(target string, spec *volumeSpec) (mounted bool, same bool, why string, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); errors.Is(err, unix.ENOENT) {
		return false, false, "", nil
	} else if err != nil {
		return false, false, "", fmt.Errorf("target_path %s: %w", target, err)
	}
	if st.Type != unix.BPF_FS_MAGIC {
		return false, false, "", nil
	}
	if ro := st.Flags&unix.ST_RDONLY != 0; ro == spec.writable {
		return true, false, fmt.Sprintf("read-only %t", ro), nil
	}
	if why := ownedBy(target, spec.gid, dirMode); why != "" {
		return true, false, why, nil
	}
	entries, err := os.ReadDir(target)
	if err != nil {
		return true, false, "", fmt.Errorf("target_path %s: %w", target, err)
	}
	if len(entries) != len(spec.maps) {
		return true, false, fmt.Sprintf("%d pins, want %d", len(entries), len(spec.maps)), nil
	}
	for _, s := range spec.maps {
		path := filepath.Join(target, s.pin)
		if why := ownedBy(path, spec.gid, spec.pinMode()); why != "" {
			return true, false, why, nil
		}
		m, err := ebpf.LoadPinnedMap(path, &ebpf.LoadPinOptions{ReadOnly: true})
		if err != nil {
			return true, false, fmt.Sprintf("map %s: %v", s.name, err), nil
		}
		info, err := m.Info()
		m.Close()
		if err != nil {
			return true, false, fmt.Sprintf("map %s: %v", s.name, err), nil
		}
		if id, _ := info.ID(); id != s.id {
			return true, false, fmt.Sprintf("map %s is map %d, want %d", s.name, id, s.id), nil
		}
	}
	return true, true, "", nil
}

// ownedBy says how path differs from being owned by root and gid with
// mode; empty when it does not.
func ownedBy(path string, gid uint32, mode fs.FileMode) string {
	fi, err := os.Lstat(path)
	if err != nil {
		return err.Error()
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid != 0 || st.Gid != gid || fi.Mode().Perm() != mode {
		return fmt.Sprintf("%s: mode %s, gid %d; want mode %s, gid %d", filepath.Base(path), fi.Mode().Perm(), gidOf(st), mode, gid)
	}
	return ""
}

func gidOf(st *syscall.Stat_t) int64 {
	if st == nil {
		return -1
	}
	return int64(st.Gid)
}

// unpublish unmounts the volume at target and removes the directory; a
// target that does not exist is fine. Only bpffs mounts are taken away: a
// target holding another file system is ErrPrecondition.
func unpublish(target string) error {
	for range maxStackedMounts {
		var st unix.Statfs_t
		err := unix.Statfs(target, &st)
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("target_path %s: %w", target, err)
		}
		if st.Type != unix.BPF_FS_MAGIC {
			break
		}
		if err := unix.Unmount(target, 0); err != nil {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("target_path %s: %w: it holds a mount or files the driver did not make there: %w", target, ErrPrecondition, err)
		}
		return fmt.Errorf("target_path %s: %w", target, err)
	}
	return nil
}
