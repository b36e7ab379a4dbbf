package artifact

import (
	"fmt"
	"runtime"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The architectures of arch-neutral objects: CO-RE objects compiled with
// -target bpfel or bpfeb and free of architecture-specific code, which load on
// any architecture of their byte order. An index entry with one of these
// architectures matches every host of that byte order that has no entry of
// its own.
const (
	ArchNeutralLittle = "bpfel"
	ArchNeutralBig    = "bpfeb"
)

// archByteOrder maps GOARCH names (the OCI platform architectures) to byte
// order.
var archByteOrder = map[string]ByteOrder{
	"386": LittleEndian, "amd64": LittleEndian, "arm": LittleEndian, "arm64": LittleEndian,
	"loong64": LittleEndian, "mips64le": LittleEndian, "mipsle": LittleEndian,
	"ppc64le": LittleEndian, "riscv64": LittleEndian, ArchNeutralLittle: LittleEndian,
	"mips": BigEndian, "mips64": BigEndian, "ppc64": BigEndian, "s390x": BigEndian,
	"sparc64": BigEndian, ArchNeutralBig: BigEndian,
}

// HostPlatform returns the platform this process runs on.
func HostPlatform() ocispec.Platform {
	return ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
}

// ParsePlatform parses "os/arch[/variant]", e.g. "linux/arm64" or
// "linux/bpfel". The architecture must be one whose byte order is known.
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		return ocispec.Platform{}, fmt.Errorf("platform %q: want os/arch[/variant], e.g. linux/amd64", s)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	if _, ok := archByteOrder[p.Architecture]; !ok {
		return ocispec.Platform{}, fmt.Errorf("platform %q: unknown architecture %q", s, p.Architecture)
	}
	return p, nil
}

// FormatPlatform returns p as "os/arch[/variant]".
func FormatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// PlatformByteOrder returns the byte order of p's architecture, if known.
func PlatformByteOrder(p ocispec.Platform) (ByteOrder, bool) {
	o, ok := archByteOrder[p.Architecture]
	return o, ok
}

// selectPlatform picks the index entry for want: the entry of its OS and
// architecture (and variant, when both give one), else the arch-neutral entry
// of its byte order.
func selectPlatform(manifests []ocispec.Descriptor, want ocispec.Platform) (ocispec.Descriptor, bool) {
	var exact, loose, neutral *ocispec.Descriptor
	order := archByteOrder[want.Architecture]
	for i := range manifests {
		m := &manifests[i]
		p := m.Platform
		if p == nil || p.OS != want.OS {
			continue
		}
		switch {
		case p.Architecture == want.Architecture && p.Variant == want.Variant:
			if exact == nil {
				exact = m
			}
		case p.Architecture == want.Architecture && (p.Variant == "" || want.Variant == ""):
			if loose == nil {
				loose = m
			}
		case (p.Architecture == ArchNeutralLittle && order == LittleEndian) || (p.Architecture == ArchNeutralBig && order == BigEndian):
			if neutral == nil {
				neutral = m
			}
		}
	}
	for _, m := range []*ocispec.Descriptor{exact, loose, neutral} {
		if m != nil {
			return *m, true
		}
	}
	return ocispec.Descriptor{}, false
}

// platformList formats the platforms of an index for an error message.
func platformList(manifests []ocispec.Descriptor) string {
	var s []string
	for _, m := range manifests {
		if m.Platform != nil {
			s = append(s, FormatPlatform(*m.Platform))
		}
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
