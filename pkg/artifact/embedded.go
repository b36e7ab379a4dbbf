package artifact

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
)

// MaxBinarySize bounds the size of a program binary an object is extracted
// from.
const MaxBinarySize = 256 << 20

// ReadEmbeddedObject reads the program binary at path (a regular file of at
// most MaxBinarySize bytes) and returns the BPF object embedded in it, as
// ExtractEmbeddedObject does.
func ReadEmbeddedObject(path string) (ObjectFile, error) {
	f, info, err := openRegular(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			if errors.Is(pe.Err, errNotRegular) {
				return ObjectFile{}, fmt.Errorf("%s: %w: %v", path, ErrInvalidObject, pe.Err)
			}
			err = pe.Err
		}
		return ObjectFile{}, fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	if info.Size() > MaxBinarySize {
		return ObjectFile{}, fmt.Errorf("%s: %w: %d bytes, more than the %d allowed", path, ErrInvalidObject, info.Size(), MaxBinarySize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxBinarySize+1))
	if err != nil {
		return ObjectFile{}, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > MaxBinarySize {
		return ObjectFile{}, fmt.Errorf("%s: %w: more than the %d bytes allowed", path, ErrInvalidObject, MaxBinarySize)
	}
	return ExtractEmbeddedObject(path, data)
}

// Offsets and sizes in a 64-bit ELF header.
const (
	elfHeaderSize   = 64
	elfOffMachine   = 18
	elfOffShoff     = 0x28
	elfOffShentsize = 0x3a
	elfOffShnum     = 0x3c
	elfShentsize64  = 64
)

// ExtractEmbeddedObject returns the BPF object embedded in the program
// binary data, as a libbpf skeleton embeds it (bcc's libbpf-tools, e.g.
// /usr/sbin/opensnoop): the one 64-bit ELF image inside data whose machine
// is EM_BPF, cut at the end of its section header table, which such an
// object has last. name names the binary in errors and, with ".bpf.o"
// appended to its base name, the object returned.
//
// The binary must embed exactly one BPF object, whole: a truncated one, one
// whose header points outside it, one whose sections do not parse, or
// several are refused with ErrInvalidObject. The object is not checked
// further: Describe, and Build, do that.
func ExtractEmbeddedObject(name string, data []byte) (ObjectFile, error) {
	var found []int
	for off := 0; ; {
		i := bytes.Index(data[off:], []byte(elf.ELFMAG))
		if i < 0 {
			break
		}
		start := off + i
		off = start + 1
		if len(data)-start >= elfHeaderSize && isBPFHeader(data[start:start+elfHeaderSize]) {
			found = append(found, start)
		}
	}
	switch len(found) {
	case 0:
		return ObjectFile{}, fmt.Errorf("%s: %w: embeds no BPF object (no ELF image for EM_BPF)", name, ErrInvalidObject)
	case 1:
	default:
		return ObjectFile{}, fmt.Errorf("%s: %w: embeds %d BPF objects, want one", name, ErrInvalidObject, len(found))
	}
	start := found[0]
	obj, err := cutObject(data[start:])
	if err != nil {
		return ObjectFile{}, fmt.Errorf("%s: embedded BPF object at offset %#x: %w: %v", name, start, ErrInvalidObject, err)
	}
	base := strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
	return ObjectFile{Name: base + ".bpf.o", Data: obj, Path: name}, nil
}

// isBPFHeader reports whether h starts a 64-bit ELF header for EM_BPF, in
// either byte order.
func isBPFHeader(h []byte) bool {
	if h[elf.EI_CLASS] != byte(elf.ELFCLASS64) {
		return false
	}
	bo, ok := byteOrder(h)
	return ok && elf.Machine(bo.Uint16(h[elfOffMachine:])) == elf.EM_BPF
}

func byteOrder(h []byte) (binary.ByteOrder, bool) {
	switch elf.Data(h[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		return binary.LittleEndian, true
	case elf.ELFDATA2MSB:
		return binary.BigEndian, true
	}
	return nil, false
}

// cutObject returns the ELF object at the start of data: up to the end of
// its section header table, checked to lie inside data and to parse with
// every section inside the object.
func cutObject(data []byte) ([]byte, error) {
	bo, _ := byteOrder(data)
	shoff := bo.Uint64(data[elfOffShoff:])
	shentsize := uint64(bo.Uint16(data[elfOffShentsize:]))
	shnum := uint64(bo.Uint16(data[elfOffShnum:]))
	switch {
	case shentsize != elfShentsize64:
		return nil, fmt.Errorf("section header size %d, want %d", shentsize, elfShentsize64)
	case shnum == 0:
		return nil, fmt.Errorf("no section headers")
	case shoff < elfHeaderSize:
		return nil, fmt.Errorf("section headers at %#x, inside the ELF header", shoff)
	}
	end := shoff + shentsize*shnum // no overflow: shnum, shentsize < 1<<16
	if shoff > MaxObjectSize || end > MaxObjectSize {
		return nil, fmt.Errorf("section headers end at %#x, more than the %d bytes an object may have", end, MaxObjectSize)
	}
	if end > uint64(len(data)) {
		return nil, fmt.Errorf("truncated: section headers end at %#x, %d bytes past the end of the binary", end, end-uint64(len(data)))
	}
	obj := data[:end:end]
	f, err := elf.NewFile(bytes.NewReader(obj))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if f.Type != elf.ET_REL {
		return nil, fmt.Errorf("ELF type %s, want a relocatable object", f.Type)
	}
	for _, s := range f.Sections {
		if s.Type == elf.SHT_NOBITS || s.Type == elf.SHT_NULL {
			continue
		}
		if s.Offset < elfHeaderSize || s.Offset+s.FileSize > shoff || s.Offset+s.FileSize < s.Offset {
			return nil, fmt.Errorf("section %q (%d bytes at %#x) outside the object's data (%#x-%#x)", s.Name, s.FileSize, s.Offset, elfHeaderSize, shoff)
		}
	}
	return obj, nil
}
