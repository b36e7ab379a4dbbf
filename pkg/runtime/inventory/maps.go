package inventory

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
)

// Map is a BPF map as the kernel knows it.
type Map struct {
	ID uint32
	// Type is the kernel's map type, e.g. "Array", "RingBuf".
	Type string
	Name string
	// KeySize and ValueSize are in bytes.
	KeySize, ValueSize, MaxEntries, Flags uint32
	// BTFID is the id of the map's BTF object; 0 without BTF.
	BTFID uint32
	// Memlock is the memory it is charged, in bytes.
	Memlock uint64
	Frozen  bool
	// ProgramIDs are the listed programs that use it.
	ProgramIDs []uint32
	// Pins are its paths under the bpffs mounts.
	Pins []string
	// Holders are the processes holding a descriptor of it.
	Holders []Holder
}

// maps lists the kernel's maps.
func (s *scan) maps(ctx context.Context) error {
	s.mapIndex = map[uint32]int{}
	id := ebpf.MapID(0)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		next, err := ebpf.MapGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return fmt.Errorf("list maps: %w", err)
		}
		id = next
		if len(s.inv.Maps) >= s.opts.MaxObjects {
			s.inv.Omitted.Maps++
			continue
		}
		m, ok := readMap(id)
		if !ok {
			continue
		}
		s.mapIndex[m.ID] = len(s.inv.Maps)
		s.inv.Maps = append(s.inv.Maps, m)
	}
	for _, p := range s.inv.Programs {
		for _, mid := range p.MapIDs {
			if i, ok := s.mapIndex[mid]; ok {
				s.inv.Maps[i].ProgramIDs = append(s.inv.Maps[i].ProgramIDs, p.ID)
			}
		}
	}
	return nil
}

// readMap reads map id; false when it is gone.
func readMap(id ebpf.MapID) (Map, bool) {
	m, err := ebpf.NewMapFromID(id)
	if err != nil {
		return Map{}, false
	}
	defer m.Close()
	info, err := m.Info()
	if err != nil {
		return Map{}, false
	}
	out := Map{
		ID: uint32(id), Type: info.Type.String(), Name: info.Name,
		KeySize: info.KeySize, ValueSize: info.ValueSize, MaxEntries: info.MaxEntries, Flags: info.Flags,
		Frozen: info.Frozen(),
	}
	if b, ok := info.BTFID(); ok {
		out.BTFID = uint32(b)
	}
	out.Memlock, _ = info.Memlock()
	return out, true
}
