package inventory

import (
	"bufio"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxPinDepth bounds how deep below a bpffs mount pins are looked for.
const maxPinDepth = 16

// pins walks every mounted bpffs and adds each pin to the object it pins.
func (s *scan) pins(ctx context.Context) {
	mounts, err := readMountinfo(filepath.Join(s.opts.ProcRoot, "self", "mountinfo"))
	if err != nil {
		s.warn("pins: %v", err)
		return
	}
	seen := map[string]bool{}
	walked := 0
	for _, m := range mounts {
		if m.fstype != "bpf" || seen[m.point] {
			continue
		}
		err := filepath.WalkDir(m.point, func(path string, d fs.DirEntry, err error) error {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			if err != nil {
				if path == m.point {
					return err
				}
				return nil // gone or unreadable
			}
			if d.IsDir() {
				if depth(m.point, path) > maxPinDepth {
					s.inv.Omitted.Pins++
					return filepath.SkipDir
				}
				return nil
			}
			if seen[path] {
				return nil
			}
			seen[path] = true
			if walked >= s.opts.MaxPins {
				s.inv.Omitted.Pins++
				return nil
			}
			walked++
			s.addPin(path)
			return nil
		})
		seen[m.point] = true
		if err != nil && ctx.Err() == nil {
			s.warn("pins under %s: %v", m.point, err)
		}
	}
}

func depth(root, path string) int {
	rel, err := filepath.Rel(root, path)
	if err != nil || rel == "." {
		return 0
	}
	return strings.Count(rel, string(filepath.Separator)) + 1
}

// addPin adds path to the pins of the object pinned there, if listed.
func (s *scan) addPin(path string) {
	kind, id, ok := pinnedObject(path)
	if !ok {
		return
	}
	switch kind {
	case kindProgram:
		if i, ok := s.progIndex[id]; ok {
			s.inv.Programs[i].Pins = append(s.inv.Programs[i].Pins, path)
		}
	case kindMap:
		if i, ok := s.mapIndex[id]; ok {
			s.inv.Maps[i].Pins = append(s.inv.Maps[i].Pins, path)
		}
	case kindLink:
		if i, ok := s.linkIndex[id]; ok {
			s.inv.Links[i].Pins = append(s.inv.Links[i].Pins, path)
		}
	}
}

// pinnedObject opens the pin at path and returns the kind and kernel id of
// the object it pins: one BPF_OBJ_GET, read-only for programs and maps
// (links open read-write only, so a refused read-only open is tried again
// read-write), and its fdinfo, which names the kind by its id field.
func pinnedObject(path string) (objectKind, uint32, bool) {
	fd, err := objGet(path, unix.BPF_F_RDONLY)
	if errors.Is(err, unix.EINVAL) {
		fd, err = objGet(path, 0)
	}
	if err != nil {
		return 0, 0, false
	}
	defer unix.Close(fd)
	f, err := os.Open("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		field, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kind, ok := idFields[field]
		if !ok {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSpace(value), 10, 32)
		return kind, uint32(id), err == nil
	}
	return 0, 0, false
}

// idFields are the fdinfo fields that hold a BPF object's id, by kind.
var idFields = map[string]objectKind{"prog_id": kindProgram, "map_id": kindMap, "link_id": kindLink}

// objGet opens the BPF object pinned at path (BPF_OBJ_GET) with flags:
// cilium/ebpf opens pins only as the kind of object the caller expects,
// each attempt a syscall and a read of fdinfo.
func objGet(path string, flags uint32) (int, error) {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return -1, err
	}
	attr := struct {
		pathname  uint64
		bpfFD     uint32
		fileFlags uint32
	}{pathname: uint64(uintptr(unsafe.Pointer(p))), fileFlags: flags}
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_OBJ_GET, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(p)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil // the kernel opens it close-on-exec
}
