// Command badcorpus writes the binary files of testdata/bad, the corpus of
// hostile input: ELF objects damaged in one precise way each, derived from
// bytecode/xdp_counter.bpf.o, and the tar layers of the bpfman images. The
// text files of the corpus are written by hand. The output is deterministic;
// `make generate` runs it.
//
//	go run ./hack/badcorpus [-dir testdata/bad]
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

func main() {
	dir := flag.String("dir", "testdata/bad", "corpus `directory`")
	flag.Parse()
	if err := generate(*dir); err != nil {
		fmt.Fprintf(os.Stderr, "badcorpus: %v\n", err)
		os.Exit(1)
	}
}

func generate(dir string) error {
	xdp, err := os.ReadFile("bytecode/xdp_counter.bpf.o")
	if err != nil {
		return err
	}
	files := map[string][]byte{}
	for name, damage := range elfDamage {
		obj, err := newObject(xdp)
		if err != nil {
			return err
		}
		if err := damage(obj); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		files[filepath.Join("elf", name+".o")] = obj.data
	}
	for name, src := range map[string]string{
		"elf/no-programs.o":               "pkg/artifact/testdata/no_programs.bpf.o",
		"elf/xdp_counter-copy.o":          "bytecode/xdp_counter.bpf.o",
		"elf/xdp_counter-be.o":            "pkg/artifact/testdata/xdp_counter_be.bpf.o",
		"elf/same-name/xdp_counter.bpf.o": "bytecode/tc_counter.bpf.o",
	} {
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		files[name] = data
	}

	// Program binaries embedding an object, as libbpf skeletons do.
	for name, build := range binaryDamage {
		obj, err := newObject(xdp)
		if err != nil {
			return err
		}
		data, err := build(obj)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		files[filepath.Join("binary", name)] = data
	}

	// bpfman images' layers: a gzipped tar holding the object, one holding
	// no file, one holding text.
	for name, entries := range map[string][]tarEntry{
		"artifact/bpfman-valid/layer.tar.gz":         {{name: "bpf/", dir: true}, {name: "bpf/xdp_counter.bpf.o", data: xdp}},
		"artifact/bpfman-layer-no-file/layer.tar.gz": {{name: "bpf/", dir: true}},
		"artifact/bpfman-layer-not-elf/layer.tar.gz": {{name: "bpf/xdp_counter.bpf.o", data: []byte("#!/bin/sh\necho not an object\n")}},
	} {
		data, err := tarGzip(entries)
		if err != nil {
			return err
		}
		files[name] = data
	}

	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// hostBinary wraps an embedded object as a program binary does: an x86-64
// ELF header, then code, the object, and more data after it.
func hostBinary(embedded ...[]byte) []byte {
	head := make([]byte, 4096)
	copy(head, elf.ELFMAG)
	head[ehIdentClass], head[ehIdentData], head[ehIdentVersion] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	le.PutUint16(head[0x10:], uint16(elf.ET_DYN))
	le.PutUint16(head[ehMachine:], uint16(elf.EM_X86_64))
	for i := 64; i < len(head); i++ {
		head[i] = byte(i * 7)
	}
	out := head
	for _, e := range embedded {
		out = append(out, e...)
	}
	return append(out, bytes.Repeat([]byte("\x00tail of the program's data"), 64)...)
}

// binaryDamage lists the program binaries: each embeds xdp_counter.bpf.o in
// one way. testdata/bad/binary/corpus.yaml says what each must fail with.
var binaryDamage = map[string]func(o *object) ([]byte, error){
	"valid":       func(o *object) ([]byte, error) { return hostBinary(o.data), nil },
	"no-object":   func(o *object) ([]byte, error) { return hostBinary(), nil },
	"two-objects": func(o *object) ([]byte, error) { return hostBinary(o.data, o.data), nil },
	"truncated": func(o *object) ([]byte, error) {
		b := hostBinary(o.data[:len(o.data)/2])
		return b[:4096+len(o.data)/2], nil
	},
	"header-at-end": func(o *object) ([]byte, error) { return append(hostBinary(), o.data[:40]...), nil },
	"section-headers-beyond-end": func(o *object) ([]byte, error) {
		le.PutUint64(o.data[ehShoff:], 1<<40)
		return hostBinary(o.data), nil
	},
	"section-outside-object": func(o *object) ([]byte, error) {
		h, err := o.header(".BTF")
		le.PutUint64(o.data[h+shOffset:], uint64(len(o.data)+16)) // into the binary's data after the object
		return hostBinary(o.data), err
	},
	"section-header-size-wrong": func(o *object) ([]byte, error) {
		le.PutUint16(o.data[ehShentsize:], 40)
		return hostBinary(o.data), nil
	},
	"btf-garbage": func(o *object) ([]byte, error) {
		err := elfDamage["btf-garbage"](o)
		return hostBinary(o.data), err
	},
}

// object is an ELF file being damaged: its bytes and where its parts are.
type object struct {
	data     []byte
	file     *elf.File
	shoff    int
	sections map[string]int // name -> index
}

func newObject(data []byte) (*object, error) {
	data = bytes.Clone(data)
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	o := &object{data: data, file: f, shoff: int(le.Uint64(data[0x28:])), sections: map[string]int{}}
	for i, s := range f.Sections {
		o.sections[s.Name] = i
	}
	return o, nil
}

var le = binary.LittleEndian

// header returns the offset of the section header of name (Elf64_Shdr).
func (o *object) header(name string) (int, error) {
	i, ok := o.sections[name]
	if !ok {
		return 0, fmt.Errorf("no section %s", name)
	}
	return o.shoff + i*64, nil
}

// content returns the offset and size of the contents of section name.
func (o *object) content(name string) (int, int, error) {
	i, ok := o.sections[name]
	if !ok {
		return 0, 0, fmt.Errorf("no section %s", name)
	}
	s := o.file.Sections[i]
	return int(s.Offset), int(s.Size), nil
}

// symbol returns the offset of the symbol table entry of name (Elf64_Sym).
func (o *object) symbol(name string) (int, error) {
	off, _, err := o.content(".symtab")
	if err != nil {
		return 0, err
	}
	syms, err := o.file.Symbols()
	if err != nil {
		return 0, err
	}
	for i, s := range syms {
		if s.Name == name {
			return off + (i+1)*24, nil // Symbols() leaves out the null symbol
		}
	}
	return 0, fmt.Errorf("no symbol %s", name)
}

// Offsets within the ELF header, a section header and a symbol.
const (
	ehIdentClass   = 4
	ehIdentData    = 5
	ehIdentVersion = 6
	ehMachine      = 0x12
	ehShoff        = 0x28
	ehShentsize    = 0x3a
	ehShnum        = 0x3c
	ehShstrndx     = 0x3e
	shName         = 0x00
	shType         = 0x04
	shOffset       = 0x18
	shSize         = 0x20
	symShndx       = 0x06
	symSize        = 0x10
	relInfo        = 0x08
)

// elfDamage lists the damaged objects: each changes xdp_counter.bpf.o in one
// way. testdata/bad/elf/corpus.yaml says what each must fail with.
var elfDamage = map[string]func(o *object) error{
	"truncated-header": func(o *object) error { o.data = o.data[:40]; return nil },
	"truncated-half":   func(o *object) error { o.data = o.data[:len(o.data)/2]; return nil },
	"wrong-machine":    func(o *object) error { le.PutUint16(o.data[ehMachine:], uint16(elf.EM_X86_64)); return nil },
	"elf32":            func(o *object) error { o.data[ehIdentClass] = byte(elf.ELFCLASS32); return nil },
	"wrong-data-encoding": func(o *object) error {
		o.data[ehIdentData] = byte(elf.ELFDATA2MSB)
		return nil
	},
	"unknown-elf-version": func(o *object) error { o.data[ehIdentVersion] = 9; return nil },
	"section-headers-beyond-eof": func(o *object) error {
		le.PutUint64(o.data[ehShoff:], 0xffff_ffff_0000)
		return nil
	},
	"section-header-count-huge": func(o *object) error { le.PutUint16(o.data[ehShnum:], 0xffff); return nil },
	"section-header-size-wrong": func(o *object) error { le.PutUint16(o.data[ehShentsize:], 10); return nil },
	"section-names-index-out-of-range": func(o *object) error {
		le.PutUint16(o.data[ehShstrndx:], 200)
		return nil
	},
	"section-size-giant": func(o *object) error {
		h, err := o.header("xdp")
		le.PutUint64(o.data[h+shSize:], 0x7fff_ffff_ffff_0000)
		return err
	},
	"section-offset-beyond-eof": func(o *object) error {
		h, err := o.header("xdp")
		le.PutUint64(o.data[h+shOffset:], 0x7fff_ffff_ffff_0000)
		return err
	},
	"btf-garbage": func(o *object) error {
		off, size, err := o.content(".BTF")
		for i := off; i < off+size; i++ {
			o.data[i] = 0xab
		}
		return err
	},
	"btf-types-out-of-bounds": func(o *object) error {
		off, _, err := o.content(".BTF")
		le.PutUint32(o.data[off+12:], 0xffff_fff0) // btf_header.type_len
		return err
	},
	"btf-strings-out-of-bounds": func(o *object) error {
		off, _, err := o.content(".BTF")
		le.PutUint32(o.data[off+20:], 0xffff_fff0) // btf_header.str_len
		return err
	},
	"btf-ext-garbage": func(o *object) error {
		off, size, err := o.content(".BTF.ext")
		for i := off + 8; i < off+size; i++ { // keep the header
			o.data[i] = 0xab
		}
		return err
	},
	"relocation-to-missing-symbol": func(o *object) error {
		off, _, err := o.content(".relxdp")
		le.PutUint64(o.data[off+relInfo:], 0x60<<32|1) // symbol 96 of 8, R_BPF_64_64
		return err
	},
	"program-beyond-section": func(o *object) error {
		s, err := o.symbol("xdp_counter")
		le.PutUint64(o.data[s+symSize:], 0xffff_ff00)
		return err
	},
	"symbol-in-missing-section": func(o *object) error {
		s, err := o.symbol("xdp_counter")
		le.PutUint16(o.data[s+symShndx:], 99)
		return err
	},
	"no-symbol-table": func(o *object) error {
		h, err := o.header(".symtab")
		le.PutUint32(o.data[h+shType:], uint32(elf.SHT_STRTAB))
		return err
	},
	"map-beyond-section": func(o *object) error {
		h, err := o.header(".maps")
		le.PutUint64(o.data[h+shSize:], 0)
		return err
	},
	"unknown-program-section": func(o *object) error {
		// Rename section xdp to LICENSE, the name of a symbol: a section no
		// loader knows the program type of.
		h, err := o.header("xdp")
		if err != nil {
			return err
		}
		s, err := o.symbol("LICENSE")
		copy(o.data[h+shName:h+shName+4], o.data[s:s+4]) // st_name: both index .strtab
		return err
	},
}

type tarEntry struct {
	name string
	dir  bool
	data []byte
}

// tarGzip returns a gzipped tar of entries, without times or owners.
func tarGzip(entries []tarEntry) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if e.dir {
			hdr = &tar.Header{Name: e.name, Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
