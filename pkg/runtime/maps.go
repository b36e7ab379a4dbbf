package runtime

import (
	"context"
	"errors"
	"fmt"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/pkg/runtime/mapview"
)

// MaxDumpEntries bounds the entries one Dump returns, and MaxDumpBytes
// their size (raw and decoded): what a page of a dump holds.
const (
	MaxDumpEntries = 10000
	MaxDumpBytes   = 8 << 20
)

// OpenMap is one of a managed program's maps, opened to read or write its
// entries, with the BTF types of its keys and values. Close it.
type OpenMap struct {
	// Program is bpfd's id of the program; Name the map's name in its
	// object.
	Program ID
	Name    string
	// KernelID, Type, KeySize, ValueSize and MaxEntries are the kernel's.
	KernelID   uint32
	Type       ebpf.MapType
	KeySize    uint32
	ValueSize  uint32
	MaxEntries uint32
	// Key and Value are the BTF types of the keys and values; nil when the
	// map was created without them.
	Key, Value btf.Type

	m *ebpf.Map
	// specs are the BTF of the map and of the program, to find record
	// types in; read when first needed.
	progID  uint32
	maps    []Map
	specs   []*btf.Spec
	btfSeen map[uint32]bool
	mgr     *Manager
}

// MapEntry is a key and value, raw and decoded as JSON (mapview) when the
// map has BTF; PerCPU holds a per-CPU map's values per CPU when asked.
type MapEntry struct {
	Key, Value         []byte
	KeyJSON, ValueJSON string
	PerCPU             [][]byte
}

// OpenMap opens map name of the managed program id. Errors wrap
// ErrProgramNotFound or ErrMapNotFound.
func (m *Manager) OpenMap(ctx context.Context, id ID, name string) (*OpenMap, error) {
	p, err := m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	var pin string
	for _, mp := range p.Maps {
		if mp.Name == name {
			pin = mp.PinPath
		}
	}
	if pin == "" {
		return nil, fmt.Errorf("program %d: map %q: %w", id, name, ErrMapNotFound)
	}
	em, err := ebpf.LoadPinnedMap(pin, nil)
	if err != nil {
		return nil, fmt.Errorf("program %d: map %q: %w", id, name, err)
	}
	o := &OpenMap{Program: id, Name: name, Type: em.Type(), KeySize: em.KeySize(), ValueSize: em.ValueSize(), MaxEntries: em.MaxEntries(),
		m: em, mgr: m, maps: p.Maps, btfSeen: map[uint32]bool{}}
	if p.Kernel != nil {
		o.progID = p.Kernel.ProgramID
	}
	info, err := mapBTFInfo(em.FD())
	if err != nil {
		em.Close()
		return nil, fmt.Errorf("program %d: map %q: %w", id, name, err)
	}
	o.KernelID = info.id
	if info.btfID != 0 {
		o.btfSeen[info.btfID] = true
		spec, err := btfSpec(btf.ID(info.btfID))
		if err == nil {
			o.specs = append(o.specs, spec)
			if info.keyTypeID != 0 {
				o.Key, _ = spec.TypeByID(btf.TypeID(info.keyTypeID))
			}
			if info.valueTypeID != 0 {
				o.Value, _ = spec.TypeByID(btf.TypeID(info.valueTypeID))
			}
		}
	}
	return o, nil
}

// Close closes the map.
func (o *OpenMap) Close() error { return o.m.Close() }

// PerCPU reports whether the map's values are per CPU.
func (o *OpenMap) PerCPU() bool {
	switch o.Type {
	case ebpf.PerCPUHash, ebpf.PerCPUArray, ebpf.LRUCPUHash, ebpf.PerCPUCGroupStorage:
		return true
	}
	return false
}

// Dump returns at most max entries (MaxDumpEntries when max is 0 or more)
// after the key after (from the first when nil), and whether more follow.
// It stops early, with more set, once the entries pass MaxDumpBytes.
func (o *OpenMap) Dump(after []byte, max int, perCPU bool) ([]MapEntry, bool, error) {
	if max <= 0 || max > MaxDumpEntries {
		max = MaxDumpEntries
	}
	if err := o.checkSize("key", after, o.KeySize, true); err != nil {
		return nil, false, err
	}
	if !o.iterable() {
		return nil, false, fmt.Errorf("map %q: a %s map has no entries to dump: %w", o.Name, o.Type, ErrInvalid)
	}
	var out []MapEntry
	var cur any
	if after != nil {
		cur = after
	}
	size := 0
	for {
		next := make([]byte, o.KeySize)
		if err := o.m.NextKey(cur, &next); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				return out, false, nil
			}
			return nil, false, fmt.Errorf("map %q: next key: %w", o.Name, err)
		}
		if len(out) == max || size > MaxDumpBytes {
			return out, true, nil
		}
		e, err := o.entry(next, perCPU)
		if errors.Is(err, ErrMapNotFound) {
			// Deleted since NextKey returned it.
			cur = next
			continue
		}
		if err != nil {
			return nil, false, err
		}
		out = append(out, e)
		size += len(e.Key) + len(e.Value) + len(e.KeyJSON) + len(e.ValueJSON)
		for _, v := range e.PerCPU {
			size += len(v)
		}
		cur = next
	}
}

// iterable reports whether the map's keys can be walked.
func (o *OpenMap) iterable() bool {
	switch o.Type {
	case ebpf.RingBuf, ebpf.PerfEventArray, ebpf.Queue, ebpf.Stack, ebpf.BloomFilter, ebpf.UserRingbuf:
		return false
	}
	return o.KeySize > 0
}

// Lookup returns the entry of key; an error wrapping ErrMapNotFound when
// there is none, ErrInvalid when key is not of the key size.
func (o *OpenMap) Lookup(key []byte, perCPU bool) (MapEntry, error) {
	if err := o.checkSize("key", key, o.KeySize, false); err != nil {
		return MapEntry{}, err
	}
	if !o.iterable() {
		return MapEntry{}, fmt.Errorf("map %q: a %s map has no entries to look up: %w", o.Name, o.Type, ErrInvalid)
	}
	return o.entry(key, perCPU)
}

func (o *OpenMap) entry(key []byte, perCPU bool) (MapEntry, error) {
	e := MapEntry{Key: key}
	if o.PerCPU() {
		var vals [][]byte
		if err := o.m.Lookup(key, &vals); err != nil {
			return e, o.lookupErr(key, err)
		}
		if perCPU || o.Value == nil {
			e.PerCPU = vals
		}
		if !perCPU && o.Value != nil {
			if sum, err := mapview.Sum(o.Value, vals); err == nil {
				e.Value = sum
			} else {
				e.PerCPU = vals
			}
		}
	} else {
		val := make([]byte, o.ValueSize)
		if err := o.m.Lookup(key, &val); err != nil {
			return e, o.lookupErr(key, err)
		}
		e.Value = val
	}
	e.KeyJSON = decodeJSON(o.Key, e.Key)
	switch {
	case e.Value != nil:
		e.ValueJSON = decodeJSON(o.Value, e.Value)
	case o.Value != nil:
		e.ValueJSON = perCPUJSON(o.Value, e.PerCPU)
	}
	return e, nil
}

func (o *OpenMap) lookupErr(key []byte, err error) error {
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("map %q: key %x: %w", o.Name, key, ErrMapNotFound)
	}
	return fmt.Errorf("map %q: key %x: %w", o.Name, key, err)
}

// Update writes value at key: raw bytes of the key and value sizes (a
// per-CPU map's value: one value per possible CPU, each padded to 8
// bytes).
func (o *OpenMap) Update(key, value []byte) error {
	if err := o.checkSize("key", key, o.KeySize, false); err != nil {
		return err
	}
	if !o.iterable() {
		return fmt.Errorf("map %q: a %s map takes no updates: %w", o.Name, o.Type, ErrInvalid)
	}
	want := o.ValueSize
	if o.PerCPU() {
		n, err := ebpf.PossibleCPU()
		if err != nil {
			return err
		}
		want = uint32(n) * ((o.ValueSize + 7) &^ 7)
	}
	if err := o.checkSize("value", value, want, false); err != nil {
		return err
	}
	if err := o.m.Update(key, value, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("map %q: update key %x: %w", o.Name, key, err)
	}
	return nil
}

// Delete removes key; ErrMapNotFound when it is not there.
func (o *OpenMap) Delete(key []byte) error {
	if err := o.checkSize("key", key, o.KeySize, false); err != nil {
		return err
	}
	if err := o.m.Delete(key); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("map %q: key %x: %w", o.Name, key, ErrMapNotFound)
		}
		return fmt.Errorf("map %q: delete key %x: %w", o.Name, key, err)
	}
	return nil
}

// ParseKey returns the raw key the JSON text names, encoded with the key's
// BTF type (mapview.Encode); ErrInvalid when the map has no key type or
// text does not fit it.
func (o *OpenMap) ParseKey(text string) ([]byte, error) {
	return o.parse("key", o.Key, text)
}

// ParseValue is ParseKey for a value; per-CPU maps take raw values only.
func (o *OpenMap) ParseValue(text string) ([]byte, error) {
	if o.PerCPU() {
		return nil, fmt.Errorf("map %q: value: a per-CPU map takes raw values only: %w", o.Name, ErrInvalid)
	}
	return o.parse("value", o.Value, text)
}

func (o *OpenMap) parse(what string, t btf.Type, text string) ([]byte, error) {
	if t == nil {
		return nil, fmt.Errorf("map %q: %s %q: the map has no BTF type for it, give raw bytes: %w", o.Name, what, text, ErrInvalid)
	}
	b, err := mapview.Encode(t, []byte(text))
	if err != nil {
		return nil, fmt.Errorf("map %q: %s: %w: %w", o.Name, what, ErrInvalid, err)
	}
	return b, nil
}

func (o *OpenMap) checkSize(what string, b []byte, size uint32, emptyOK bool) error {
	if emptyOK && len(b) == 0 || len(b) == int(size) {
		return nil
	}
	return fmt.Errorf("map %q: %s of %d bytes, the map's is %d: %w", o.Name, what, len(b), size, ErrInvalid)
}

// RecordType returns the BTF type named name ("event", "struct event")
// from the BTF of the map, the program or the program's other maps (a
// global variable of the type puts it in the BTF of .bss): the type of
// the records of a ring buffer or perf event array. ErrInvalid when none
// has it.
func (o *OpenMap) RecordType(name string) (btf.Type, error) {
	o.loadProgramBTF()
	bare := name
	for _, p := range []string{"struct ", "union ", "enum "} {
		if len(name) > len(p) && name[:len(p)] == p {
			bare = name[len(p):]
		}
	}
	for _, spec := range o.specs {
		ts, err := spec.AnyTypesByName(bare)
		if err != nil {
			continue
		}
		for _, t := range ts {
			if bare == name || mapview.TypeName(t) == name {
				if _, err := btf.Sizeof(t); err == nil {
					return t, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("program %d: record type %q: not in the BTF of the program or of map %q: %w", o.Program, name, o.Name, ErrInvalid)
}

// loadProgramBTF adds the BTF of the program and of its other maps to
// the specs searched, once.
func (o *OpenMap) loadProgramBTF() {
	if o.maps == nil {
		return
	}
	add := func(id uint32) {
		if id == 0 || o.btfSeen[id] {
			return
		}
		o.btfSeen[id] = true
		if spec, err := btfSpec(btf.ID(id)); err == nil {
			o.specs = append(o.specs, spec)
		}
	}
	if o.progID != 0 {
		if prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(o.progID)); err == nil {
			if info, err := prog.Info(); err == nil {
				bid, _ := info.BTFID()
				add(uint32(bid))
			}
			prog.Close()
		}
	}
	for _, mp := range o.maps {
		em, err := ebpf.LoadPinnedMap(mp.PinPath, &ebpf.LoadPinOptions{ReadOnly: true})
		if err != nil {
			continue
		}
		if info, err := mapBTFInfo(em.FD()); err == nil {
			add(info.btfID)
		}
		em.Close()
	}
	o.maps = nil
}

func btfSpec(id btf.ID) (*btf.Spec, error) {
	h, err := btf.NewHandleFromID(id)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	spec, err := h.Spec(nil)
	if err != nil {
		base, kerr := btf.LoadKernelSpec()
		if kerr != nil {
			return nil, err
		}
		return h.Spec(base)
	}
	return spec, nil
}

func decodeJSON(t btf.Type, b []byte) string {
	if t == nil {
		return ""
	}
	j, err := mapview.JSON(t, b)
	if err != nil {
		return ""
	}
	return string(j)
}

func perCPUJSON(t btf.Type, vals [][]byte) string {
	out := []byte{'['}
	for i, v := range vals {
		if i > 0 {
			out = append(out, ',')
		}
		j, err := mapview.JSON(t, v)
		if err != nil {
			return ""
		}
		out = append(out, j...)
	}
	return string(append(out, ']'))
}

// mapInfo is what bpfd reads of struct bpf_map_info beyond what
// cilium/ebpf reports: the BTF key and value type ids.
type mapInfo struct {
	id, btfID, keyTypeID, valueTypeID uint32
}

// mapBTFInfo reads struct bpf_map_info of the map fd.
func mapBTFInfo(fd int) (mapInfo, error) {
	// struct bpf_map_info up to btf_value_type_id (offset 72), padded.
	// The pointer is a Go pointer, so that the collector keeps the buffer
	// where the kernel writes (bpfd is built for 64-bit hosts, where it
	// fills the attribute's __u64).
	var info [88]byte
	attr := struct {
		fd      uint32
		infoLen uint32
		info    unsafe.Pointer
	}{uint32(fd), uint32(len(info)), unsafe.Pointer(&info[0])}
	_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_OBJ_GET_INFO_BY_FD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno != 0 {
		return mapInfo{}, fmt.Errorf("map info: %w", errno)
	}
	u32 := func(off int) uint32 { return *(*uint32)(unsafe.Pointer(&info[off])) }
	return mapInfo{id: u32(4), btfID: u32(64), keyTypeID: u32(68), valueTypeID: u32(72)}, nil
}
