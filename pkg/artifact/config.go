package artifact

import (
	"github.com/opencontainers/go-digest"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// ConfigSchemaVersion is the schemaVersion of the Config this package writes.
// Readers accept configs of this version whose media type is MediaTypeConfig;
// fields are only ever added within a version.
const ConfigSchemaVersion = 1

// Config is the config blob of a bytecode manifest (MediaTypeConfig): what the
// objects in its layers declare, extracted from their ELF by Describe, never
// written by hand. Every list is sorted by name, so the same objects always
// give the same bytes. docs/artifact-spec.md is the normative description of
// each field.
type Config struct {
	SchemaVersion int `json:"schemaVersion"`
	// ByteOrder of every object: "little" or "big".
	ByteOrder ByteOrder `json:"byteOrder"`
	// Objects, one per layer, sorted by name.
	Objects []Object `json:"objects"`
	// Requires lists what the kernel must support to load the objects.
	Requires Requirements `json:"requires"`
	// Build records how the artifact was made.
	Build BuildInfo `json:"build"`
}

// ByteOrder is the endianness BPF objects were compiled for.
type ByteOrder string

// The byte orders of BPF objects.
const (
	LittleEndian ByteOrder = "little"
	BigEndian    ByteOrder = "big"
)

// Object describes one ELF object file, carried in the layer whose title
// annotation is Name and whose digest is Digest.
type Object struct {
	// Name is the object's file name, without directories.
	Name   string        `json:"name"`
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
	// BTF reports whether the object carries BTF type information (.BTF).
	BTF      bool      `json:"btf"`
	Programs []Program `json:"programs"`
	// Maps are the maps the object defines, without its data sections.
	Maps []Map `json:"maps"`
	// DataSections are the object's global variable sections (.rodata*,
	// .data*, .bss), each a single-element array map at load time.
	DataSections []DataSection `json:"dataSections"`
}

// Program describes one BPF program (an ELF function in a program section).
type Program struct {
	// Name is the program's function name, unique within the artifact.
	Name string `json:"name"`
	// Section is the ELF section the program lives in, e.g. "xdp" or
	// "tracepoint/syscalls/sys_enter_openat".
	Section string `json:"section"`
	// Type is the kernel program type (enum bpf_prog_type without
	// BPF_PROG_TYPE_, lower case), e.g. "xdp", "sched_cls", "tracing".
	Type string `json:"type"`
	// AttachType is the expected attach type the program is loaded with
	// (enum bpf_attach_type without BPF_, lower case), or empty when the
	// program type takes none.
	AttachType string `json:"attachType,omitempty"`
	// AttachTarget is the hook the section names, if any: a tracepoint
	// ("syscalls/sys_enter_openat") or a kernel function ("do_unlinkat").
	AttachTarget string `json:"attachTarget,omitempty"`
	// Kinds are the ways bpfd can attach the program (see pkg/progtype),
	// preferred first; empty when bpfd cannot attach it.
	Kinds []progtype.Kind `json:"kinds"`
	// License is the object's license string ("GPL", "Dual BSD/GPL", ...).
	License string `json:"license"`
	// Instructions is the program's length in BPF instructions, including
	// the subprograms it calls.
	Instructions int `json:"instructions"`
}

// Map describes one BPF map definition.
type Map struct {
	Name string `json:"name"`
	// Type is the kernel map type (enum bpf_map_type without
	// BPF_MAP_TYPE_, lower case), e.g. "hash", "percpu_array".
	Type       string `json:"type"`
	KeySize    uint32 `json:"keySize"`
	ValueSize  uint32 `json:"valueSize"`
	MaxEntries uint32 `json:"maxEntries"`
	// Flags are the map_flags given at creation (BPF_F_*).
	Flags uint32 `json:"flags"`
	// Pinning is "none" or "by_name" (LIBBPF_PIN_BY_NAME).
	Pinning string `json:"pinning"`
}

// DataSection describes one section of global variables.
type DataSection struct {
	// Name is the ELF section, e.g. ".rodata", ".data", ".bss".
	Name string `json:"name"`
	// ReadOnly is true for .rodata* sections: the kernel freezes them at
	// load, so their globals are constants a loader may set beforehand.
	ReadOnly bool `json:"readOnly"`
	// Size of the section in bytes.
	Size    uint32   `json:"size"`
	Globals []Global `json:"globals"`
}

// Global describes one global variable of a data section.
type Global struct {
	Name   string `json:"name"`
	Offset uint32 `json:"offset"`
	Size   uint32 `json:"size"`
	// Type is the name of the variable's BTF type without qualifiers, e.g.
	// "__u32", or empty when unnamed or unknown.
	Type string `json:"type,omitempty"`
}

// Requirements lists the kernel features the objects need, each list sorted
// and without duplicates. A loader checks them against the running kernel
// (e.g. with cilium/ebpf's features package) before loading.
type Requirements struct {
	ProgramTypes []string `json:"programTypes"`
	AttachTypes  []string `json:"attachTypes"`
	MapTypes     []string `json:"mapTypes"`
	// Helpers are the BPF helper functions called, by kernel name
	// ("bpf_map_lookup_elem").
	Helpers []string `json:"helpers"`
	// Kfuncs are the kernel functions called through kfunc calls.
	Kfuncs []string `json:"kfuncs"`
	// KernelBTF is true when loading needs the kernel's BTF: CO-RE
	// relocations, kfuncs, or tracing, LSM, extension or struct_ops
	// programs.
	KernelBTF bool `json:"kernelBTF"`
}

// BuildInfo records how an artifact was built.
type BuildInfo struct {
	// Tool is the builder, its version and commit, e.g. "bpfctl-image
	// v0.1.0 (commit 1a2b3c4d5e6f)".
	Tool string `json:"tool,omitempty"`
	// Compilers are the producers named in the objects' .comment sections.
	Compilers []string `json:"compilers,omitempty"`
	// Source and Revision repeat the org.opencontainers.image.source and
	// .revision annotations, when given.
	Source   string `json:"source,omitempty"`
	Revision string `json:"revision,omitempty"`
}

// Program returns the program named name and the object declaring it.
func (c *Config) Program(name string) (Program, Object, bool) {
	for _, o := range c.Objects {
		for _, p := range o.Programs {
			if p.Name == name {
				return p, o, true
			}
		}
	}
	return Program{}, Object{}, false
}

// mapNamed returns the map named name and the object defining it.
func (c *Config) mapNamed(name string) (Map, Object, bool) {
	for _, o := range c.Objects {
		for _, m := range o.Maps {
			if m.Name == name {
				return m, o, true
			}
		}
	}
	return Map{}, Object{}, false
}
