package inventory

import (
	"context"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
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

// pinnedObject opens the pin at path read-only and returns the kind and
// kernel id of the object it pins.
func pinnedObject(path string) (objectKind, uint32, bool) {
	ro := &ebpf.LoadPinOptions{ReadOnly: true}
	if p, err := ebpf.LoadPinnedProgram(path, ro); err == nil {
		defer p.Close()
		id, ok := fdID(p.FD(), "prog_id:")
		return kindProgram, id, ok
	}
	if m, err := ebpf.LoadPinnedMap(path, ro); err == nil {
		defer m.Close()
		id, ok := fdID(m.FD(), "map_id:")
		return kindMap, id, ok
	}
	// The kernel opens links read-write only.
	if l, err := link.LoadPinnedLink(path, nil); err == nil {
		defer l.Close()
		info, err := l.Info()
		if err != nil {
			return 0, 0, false
		}
		return kindLink, uint32(info.ID), true
	}
	return 0, 0, false
}

// fdID reads the id of this process's descriptor fd from its fdinfo.
func fdID(fd int, field string) (uint32, bool) {
	return fdinfoID("/proc/self/fdinfo/"+strconv.Itoa(fd), field)
}
