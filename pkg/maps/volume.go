package maps

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
)

// Volume is a directory where csi.bpfd.io published a config's maps, one
// pin per map.
type Volume struct {
	dir      string
	readOnly bool
}

// Open returns the volume mounted at dir. It fails with an error matching
// ErrNotVolume when dir is not a bpffs. Open holds nothing open.
func Open(dir string) (*Volume, error) {
	ro, err := statVolume(dir)
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", dir, err)
	}
	return &Volume{dir: dir, readOnly: ro}, nil
}

// Dir returns the volume's directory.
func (v *Volume) Dir() string { return v.dir }

// ReadOnly reports whether the volume is mounted read-only: the pod did not
// ask for write access, so Map opens every map read-only.
func (v *Volume) ReadOnly() bool { return v.readOnly }

// Names returns the pin names of the maps in the volume, sorted: each map's
// name in its object with dots made underscores (see PinName).
func (v *Volume) Names() ([]string, error) {
	entries, err := os.ReadDir(v.dir)
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", v.dir, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names, nil
}

// Map opens the map called name in its object ("xdp_stats", or ".bss" for
// the object's global variables), read-only when the volume is read-only or
// the map's pin is not writable to this process. The caller closes it.
//
// Errors match ErrNotFound (the volume holds no such map),
// ErrUnprivilegedBPFDisabled (the kernel refuses bpf() to this process) or
// fs.ErrPermission (the pin's group is not one of this process's groups:
// the pod's securityContext.fsGroup is what the driver gives it to).
func (v *Volume) Map(name string) (*ebpf.Map, error) {
	pin := PinName(name)
	if pin == "" || pin != filepath.Base(pin) || pin == ".." {
		return nil, fmt.Errorf("map %q: %w: not a map name", name, ErrNotFound)
	}
	path := filepath.Join(v.dir, pin)
	var (
		m   *ebpf.Map
		err error
	)
	if !v.readOnly {
		m, err = ebpf.LoadPinnedMap(path, nil)
		if err == nil {
			return m, nil
		}
		if !writeRefused(err) {
			return nil, v.mapError(name, path, err)
		}
	}
	m, err = ebpf.LoadPinnedMap(path, &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		return nil, v.mapError(name, path, err)
	}
	return m, nil
}

// mapError explains why the map at path could not be opened.
func (v *Volume) mapError(name, path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		names, lerr := v.Names()
		if lerr != nil {
			return fmt.Errorf("map %s: %w: %w", name, ErrNotFound, lerr)
		}
		return fmt.Errorf("map %s: %w %s (it holds %s)", name, ErrNotFound, v.dir, listOrNone(names))
	case isEPERM(err):
		return fmt.Errorf("map %s: %w (%s): %w", name, ErrUnprivilegedBPFDisabled, unprivilegedHint(), err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("map %s: %s: %w", name, permissionHint(path), err)
	}
	return fmt.Errorf("map %s: %w", name, err)
}

// PinName returns the name of the pin of a map called name in its object:
// bpffs refuses dots in names, so they become underscores (".bss" is pinned
// as "_bss"), as in bpfd's own pin layout.
func PinName(name string) string { return strings.ReplaceAll(name, ".", "_") }

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "no maps"
	}
	return strings.Join(names, ", ")
}
