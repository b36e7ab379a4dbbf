package artifact

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/opencontainers/go-digest"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// Describe extracts the Config of the objects with cilium/ebpf: their
// programs, maps, globals and kernel requirements, and the compilers named in
// them. It fails, naming the object, when one is not a BPF ELF object, is
// corrupt, declares no program, or shares its file name or a program name
// with another, or when the objects differ in byte order. Build.Tool, Source
// and Revision are left for the caller.
func Describe(objects []ObjectFile) (*Config, error) {
	sources := make([]objectSource, len(objects))
	for i, f := range objects {
		sources[i] = f.source()
	}
	return describe(sources)
}

// objectSource is an object to describe: an ObjectFile in memory, or one
// FetchObjects streamed to a writer, read back from where it was written.
type objectSource struct {
	ObjectFile // Name and Path; Data is unused
	at         io.ReaderAt
	size       int64
	digest     digest.Digest
}

// source returns f as an objectSource.
func (f ObjectFile) source() objectSource {
	return objectSource{ObjectFile: f, at: bytes.NewReader(f.Data), size: int64(len(f.Data)), digest: digest.FromBytes(f.Data)}
}

// describe is Describe for objects in memory or read back from storage.
func describe(objects []objectSource) (*Config, error) {
	if len(objects) == 0 {
		return nil, fmt.Errorf("no objects: %w", ErrInvalidObject)
	}
	cfg := &Config{SchemaVersion: ConfigSchemaVersion}
	req := newRequirementSet()
	compilers := map[string]bool{}
	fileOf := map[string]string{}    // file name -> the object's label
	programOf := map[string]string{} // program name -> the object's label
	for _, f := range objects {
		if err := validFileName(f.Name); err != nil {
			return nil, fmt.Errorf("%s: %w: %v", f.label(), ErrInvalidObject, err)
		}
		if other, dup := fileOf[f.Name]; dup {
			return nil, fmt.Errorf("%s: %w: %s has the same file name, and layers are named by it", f.label(), ErrInvalidObject, other)
		}
		fileOf[f.Name] = f.label()
		obj, order, comments, err := describeObject(f, req)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.label(), err)
		}
		for _, p := range obj.Programs {
			if other, dup := programOf[p.Name]; dup {
				return nil, fmt.Errorf("%s: %w: program %s is also declared by %s", f.label(), ErrInvalidObject, p.Name, other)
			}
			programOf[p.Name] = f.label()
		}
		switch {
		case cfg.ByteOrder == "":
			cfg.ByteOrder = order
		case cfg.ByteOrder != order:
			return nil, fmt.Errorf("%s: %w: %s-endian, but %s is %s-endian", f.label(), ErrInvalidObject, order, objects[0].label(), cfg.ByteOrder)
		}
		for _, c := range comments {
			compilers[c] = true
		}
		cfg.Objects = append(cfg.Objects, obj)
	}
	slices.SortFunc(cfg.Objects, func(a, b Object) int { return strings.Compare(a.Name, b.Name) })
	cfg.Requires = req.sorted()
	if len(compilers) > 0 {
		cfg.Build.Compilers = sortedKeys(compilers)
	}
	return cfg, nil
}

// describeObject describes one object and adds what it needs to req. It
// returns errors without the file name, which the caller adds.
func describeObject(f objectSource, req *requirementSet) (Object, ByteOrder, []string, error) {
	obj := Object{
		Name:         f.Name,
		Digest:       f.digest,
		Size:         f.size,
		Programs:     []Program{},
		Maps:         []Map{},
		DataSections: []DataSection{},
	}
	ef, err := openELF(f.at)
	if err != nil {
		return Object{}, "", nil, err
	}
	obj.BTF = ef.Section(".BTF") != nil
	comments := elfComments(ef)

	spec, err := ebpf.LoadCollectionSpecFromReader(io.NewSectionReader(f.at, 0, f.size))
	if err != nil {
		return Object{}, "", nil, fmt.Errorf("%w: %v", ErrInvalidObject, err)
	}
	if len(spec.Programs) == 0 {
		return Object{}, "", nil, fmt.Errorf("%w: no BPF programs in it", ErrInvalidObject)
	}
	order := LittleEndian
	if spec.ByteOrder == binary.BigEndian {
		order = BigEndian
	}

	for _, p := range spec.Programs {
		prog, err := describeProgram(p, req)
		if err != nil {
			return Object{}, "", nil, fmt.Errorf("%w: program %s: %v", ErrInvalidObject, p.Name, err)
		}
		obj.Programs = append(obj.Programs, prog)
	}
	slices.SortFunc(obj.Programs, func(a, b Program) int { return strings.Compare(a.Name, b.Name) })

	sections := map[string]*DataSection{}
	for name, m := range spec.Maps {
		if isDataSection(name) {
			sections[name] = &DataSection{Name: name, ReadOnly: strings.HasPrefix(name, ".rodata"), Size: m.ValueSize, Globals: []Global{}}
			continue
		}
		if strings.HasPrefix(name, ".") { // .kconfig, .ksyms: filled in by the loader
			continue
		}
		obj.Maps = append(obj.Maps, Map{
			Name:       name,
			Type:       mapTypeName(m.Type),
			KeySize:    m.KeySize,
			ValueSize:  m.ValueSize,
			MaxEntries: m.MaxEntries,
			Flags:      m.Flags,
			Pinning:    pinningName(m.Pinning),
		})
		req.mapTypes[mapTypeName(m.Type)] = true
	}
	slices.SortFunc(obj.Maps, func(a, b Map) int { return strings.Compare(a.Name, b.Name) })
	if len(sections) > 0 {
		req.mapTypes[mapTypeName(ebpf.Array)] = true
	}

	for name, v := range spec.Variables {
		sec, ok := sections[v.SectionName]
		if !ok {
			continue
		}
		sec.Globals = append(sec.Globals, Global{Name: name, Offset: v.Offset, Size: v.Size(), Type: varTypeName(v)})
	}
	for _, sec := range sections {
		slices.SortFunc(sec.Globals, func(a, b Global) int { return strings.Compare(a.Name, b.Name) })
		obj.DataSections = append(obj.DataSections, *sec)
	}
	slices.SortFunc(obj.DataSections, func(a, b DataSection) int { return strings.Compare(a.Name, b.Name) })
	return obj, order, comments, nil
}

func describeProgram(p *ebpf.ProgramSpec, req *requirementSet) (Program, error) {
	size := p.Instructions.Size()
	prog := Program{
		Name:         p.Name,
		Section:      p.SectionName,
		Type:         programTypeName(p.Type),
		AttachType:   expectedAttachType(p),
		AttachTarget: progtype.AttachTarget(p),
		Kinds:        progtype.Of(p),
		License:      p.License,
		Instructions: int(size / asm.InstructionSize),
	}
	if prog.Kinds == nil {
		prog.Kinds = []progtype.Kind{}
	}
	if p.Type == ebpf.UnspecifiedProgram {
		return Program{}, fmt.Errorf("section %q names no program type", p.SectionName)
	}
	req.programTypes[prog.Type] = true
	if prog.AttachType != "" {
		req.attachTypes[prog.AttachType] = true
	}
	switch p.Type {
	case ebpf.Tracing, ebpf.LSM, ebpf.Extension, ebpf.StructOps:
		req.kernelBTF = true
	}
	for i := range p.Instructions {
		ins := &p.Instructions[i]
		switch {
		case ins.IsBuiltinCall():
			req.helpers[helperName(asm.BuiltinFunc(ins.Constant))] = true
		case ins.IsKfuncCall():
			req.kernelBTF = true
			if name := kfuncName(ins); name != "" {
				req.kfuncs[name] = true
			}
		}
		if btf.CORERelocationMetadata(ins) != nil {
			req.kernelBTF = true
		}
	}
	return prog, nil
}

// expectedAttachType names the attach type p is loaded with. cilium/ebpf
// reports "none" as 0, which is also BPF_CGROUP_INET_INGRESS: only
// cgroup_skb/ingress sections mean the latter.
func expectedAttachType(p *ebpf.ProgramSpec) string {
	if p.AttachType == ebpf.AttachNone && !(p.Type == ebpf.CGroupSKB && p.SectionName == "cgroup_skb/ingress") {
		return ""
	}
	return attachTypeName(p.AttachType)
}

func kfuncName(ins *asm.Instruction) string {
	if ref := ins.Reference(); ref != "" {
		return ref
	}
	if fn := btf.FuncMetadata(ins); fn != nil {
		return fn.Name
	}
	return ""
}

func pinningName(p ebpf.PinType) string {
	switch p {
	case ebpf.PinNone:
		return "none"
	case ebpf.PinByName:
		return "by_name"
	}
	return fmt.Sprintf("%d", p)
}

// isDataSection reports whether a map of cilium/ebpf stands for a section of
// global variables.
func isDataSection(name string) bool {
	return name == ".bss" || strings.HasPrefix(name, ".data") || strings.HasPrefix(name, ".rodata")
}

// varTypeName returns the name of a global's type with qualifiers removed.
func varTypeName(v *ebpf.VariableSpec) string {
	if v.Type == nil {
		return ""
	}
	t := v.Type.Type
	for {
		switch q := t.(type) {
		case *btf.Volatile:
			t = q.Type
		case *btf.Const:
			t = q.Type
		case *btf.Restrict:
			t = q.Type
		case *btf.TypeTag:
			t = q.Type
		default:
			return t.TypeName()
		}
	}
}

// openELF parses data as an ELF file for BPF, with errors a user can act on.
func openELF(data io.ReaderAt) (f *elf.File, err error) {
	magic := make([]byte, len(elf.ELFMAG))
	if _, err := data.ReadAt(magic, 0); err != nil || string(magic) != elf.ELFMAG {
		return nil, fmt.Errorf("%w: not an ELF file", ErrInvalidObject)
	}
	defer func() { // debug/elf may panic on hostile input
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("%w: corrupt ELF: %v", ErrInvalidObject, r)
		}
	}()
	f, err = elf.NewFile(data)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("%w: truncated ELF file", ErrInvalidObject)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: corrupt ELF: %v", ErrInvalidObject, err)
	}
	// Old LLVM versions set e_machine to EM_NONE.
	if f.Machine != elf.EM_BPF && f.Machine != elf.EM_NONE {
		return nil, fmt.Errorf("%w: an ELF file for %s, not BPF", ErrInvalidObject, machineName(f.Machine))
	}
	if f.Class != elf.ELFCLASS64 {
		return nil, fmt.Errorf("%w: a 32-bit ELF file; BPF objects are 64-bit", ErrInvalidObject)
	}
	return f, nil
}

func machineName(m elf.Machine) string {
	return strings.TrimPrefix(m.String(), "EM_")
}

// elfComments returns the producers recorded in the .comment section.
func elfComments(f *elf.File) []string {
	sec := f.Section(".comment")
	if sec == nil {
		return nil
	}
	data, err := sec.Data()
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range bytes.Split(data, []byte{0}) {
		if c := strings.TrimSpace(string(s)); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// requirementSet collects Requirements without duplicates.
type requirementSet struct {
	programTypes, attachTypes, mapTypes, helpers, kfuncs map[string]bool
	kernelBTF                                            bool
}

func newRequirementSet() *requirementSet {
	return &requirementSet{
		programTypes: map[string]bool{}, attachTypes: map[string]bool{}, mapTypes: map[string]bool{},
		helpers: map[string]bool{}, kfuncs: map[string]bool{},
	}
}

func (r *requirementSet) sorted() Requirements {
	return Requirements{
		ProgramTypes: sortedKeys(r.programTypes),
		AttachTypes:  sortedKeys(r.attachTypes),
		MapTypes:     sortedKeys(r.mapTypes),
		Helpers:      sortedKeys(r.helpers),
		Kfuncs:       sortedKeys(r.kfuncs),
		KernelBTF:    r.kernelBTF,
	}
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
