package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// The config labels of bpfman's bytecode images. The current ones hold JSON
// objects mapping program (function) and map names to their types; the
// older, single-program labels name one program.
const (
	LabelPrograms = "io.ebpf.programs"
	LabelMaps     = "io.ebpf.maps"

	labelV1FunctionName = "io.ebpf.bpf_function_name"
	labelV1ProgramType  = "io.ebpf.program_type"
)

// imageConfig is the part of an OCI or Docker image config bpfman reads.
type imageConfig struct {
	Config struct {
		Labels map[string]string `json:"Labels"`
	} `json:"config"`
}

// readBpfman reads a bpfman image: a container image whose config labels name
// the programs and whose first layer, a tar (usually gzipped), holds the
// object as its first regular file. The Config is extracted from the object;
// the labels must agree with it.
func (mc *manifestContent) readBpfman(ctx context.Context, store content.Fetcher, m ocispec.Manifest) error {
	data, err := fetchBlob(ctx, store, m.Config, maxMetadataSize)
	if err != nil {
		return fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	var ic imageConfig
	if err := json.Unmarshal(data, &ic); err != nil {
		return fmt.Errorf("config %s: %w: %v", m.Config.Digest, ErrUnsupported, err)
	}
	programs, mapLabels, err := bpfmanLabels(ic.Config.Labels)
	if err != nil {
		return err
	}
	mc.Format = FormatBpfman
	mc.Labels = map[string]string{}
	for k, v := range ic.Config.Labels {
		if strings.HasPrefix(k, "io.ebpf.") {
			mc.Labels[k] = v
		}
	}
	if len(m.Layers) == 0 {
		return fmt.Errorf("%w: bpfman image without layers", ErrUnsupported)
	}
	layer := m.Layers[0]
	obj, err := bpfmanObject(ctx, store, layer)
	if err != nil {
		return fmt.Errorf("layer %s: %w", layer.Digest, err)
	}
	cfg, err := Describe([]ObjectFile{obj})
	if err != nil {
		return fmt.Errorf("layer %s: %w", layer.Digest, err)
	}
	if err := checkBpfmanLabels(cfg, programs, mapLabels); err != nil {
		return err
	}
	cfg.Build.Source = mc.Annotations[ocispec.AnnotationSource]
	cfg.Build.Revision = mc.Annotations[ocispec.AnnotationRevision]
	mc.Config = *cfg
	mc.objects = []ObjectFile{obj}
	return nil
}

// bpfmanLabels returns the programs and maps the labels name, with their
// bpfman types, or ErrUnsupported when the image is not a bpfman image.
func bpfmanLabels(labels map[string]string) (programs, mapLabels map[string]string, err error) {
	if raw, ok := labels[LabelPrograms]; ok {
		if err := json.Unmarshal([]byte(raw), &programs); err != nil {
			return nil, nil, fmt.Errorf("%w: label %s is not a JSON object of program names: %v", ErrUnsupported, LabelPrograms, err)
		}
		if raw, ok := labels[LabelMaps]; ok {
			if err := json.Unmarshal([]byte(raw), &mapLabels); err != nil {
				return nil, nil, fmt.Errorf("%w: label %s is not a JSON object of map names: %v", ErrUnsupported, LabelMaps, err)
			}
		}
		return programs, mapLabels, nil
	}
	if name, ok := labels[labelV1FunctionName]; ok {
		return map[string]string{name: labels[labelV1ProgramType]}, nil, nil
	}
	return nil, nil, fmt.Errorf("%w: a container image without the %s label, not bytecode", ErrUnsupported, LabelPrograms)
}

// checkBpfmanLabels checks what the labels say against the object: every
// program and map they name exists, with a type that is the object's.
// bpfman spells types its own way ("kprobe" for a kretprobe, "tc" for a
// sched_cls program, "per_cpu_array" for percpu_array), so a program's type
// matches its kernel type, any kind bpfd attaches it as, or a kind of the
// same family; a map's matches ignoring case and underscores.
func checkBpfmanLabels(cfg *Config, programs, mapLabels map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(programs)) {
		typ := programs[name]
		p, obj, ok := cfg.Program(name)
		if !ok {
			return classified{fmt.Errorf("%w: label %s names program %s, which %s does not define", ErrUnsupported, LabelPrograms, name, objectNames(cfg)), ErrConfigMismatch}
		}
		if typ != "" && !bpfmanProgramType(p, typ) {
			return classified{fmt.Errorf("%w: label %s says program %s is %q, but %s defines it as %s", ErrUnsupported, LabelPrograms, name, typ, obj.Name, programDescription(p)), ErrConfigMismatch}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(mapLabels)) {
		typ := mapLabels[name]
		m, obj, ok := cfg.mapNamed(name)
		if !ok {
			return classified{fmt.Errorf("%w: label %s names map %s, which %s does not define", ErrUnsupported, LabelMaps, name, objectNames(cfg)), ErrConfigMismatch}
		}
		if typ != "" && normalizeType(typ) != normalizeType(m.Type) {
			return classified{fmt.Errorf("%w: label %s says map %s is %q, but %s defines it as %s", ErrUnsupported, LabelMaps, name, typ, obj.Name, m.Type), ErrConfigMismatch}
		}
	}
	return nil
}

// bpfmanProgramType reports whether typ, a bpfman program type, names
// program p.
func bpfmanProgramType(p Program, typ string) bool {
	t := normalizeType(typ)
	if t == normalizeType(p.Type) {
		return true
	}
	for _, k := range p.Kinds {
		for _, alias := range kindFamily[k] {
			if t == alias {
				return true
			}
		}
	}
	return false
}

// kindFamily lists, for each kind bpfd attaches, the bpfman type names that
// may label a program of that kind (normalized).
var kindFamily = map[progtype.Kind][]string{
	progtype.XDP:           {"xdp"},
	progtype.TC:            {"tc", "tcx", "schedcls"},
	progtype.TCX:           {"tc", "tcx", "schedcls"},
	progtype.Tracepoint:    {"tracepoint"},
	progtype.Kprobe:        {"kprobe", "kretprobe", "probe"},
	progtype.Kretprobe:     {"kprobe", "kretprobe", "probe"},
	progtype.Uprobe:        {"uprobe", "uretprobe", "probe"},
	progtype.Uretprobe:     {"uprobe", "uretprobe", "probe"},
	progtype.Fentry:        {"fentry", "fexit", "tracing"},
	progtype.Fexit:         {"fentry", "fexit", "tracing"},
	progtype.RawTracepoint: {"rawtracepoint", "rawtp"},
	progtype.TPBTF:         {"tpbtf", "tracing"},
	progtype.Cgroup:        {"cgroup", "cgroupskb", "cgroupsock", "cgroupsockaddr", "cgroupsockopt", "cgroupsysctl", "cgroupdevice", "sockops"},
}

// normalizeType lowercases a type name and drops underscores and dashes.
func normalizeType(s string) string {
	return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
}

func programDescription(p Program) string {
	if len(p.Kinds) == 0 {
		return p.Type
	}
	return fmt.Sprintf("%s (%s)", p.Type, kindList(p))
}

func objectNames(cfg *Config) string {
	return strings.Join(names(cfg.Objects, func(o Object) string { return o.Name }), ", ")
}

// bpfmanObject fetches a bpfman layer and returns the first regular file in
// it.
func bpfmanObject(ctx context.Context, store content.Fetcher, layer ocispec.Descriptor) (ObjectFile, error) {
	var gzipped bool
	switch layer.MediaType {
	case ocispec.MediaTypeImageLayerGzip, mediaTypeDockerLayerGzip:
		gzipped = true
	case ocispec.MediaTypeImageLayer:
	default:
		return ObjectFile{}, fmt.Errorf("%w: layer media type %q (want a tar or gzipped tar)", ErrUnsupported, layer.MediaType)
	}
	data, err := fetchBlob(ctx, store, layer, MaxObjectSize)
	if err != nil {
		return ObjectFile{}, err
	}
	var r io.Reader = bytes.NewReader(data)
	if gzipped {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return ObjectFile{}, fmt.Errorf("%w: %v", ErrUnsupported, err) // "gzip: invalid header"
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return ObjectFile{}, fmt.Errorf("%w: no file in the layer", ErrUnsupported)
		}
		if err != nil {
			return ObjectFile{}, fmt.Errorf("%w: tar: %v", ErrUnsupported, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if hdr.Size > MaxObjectSize {
			return ObjectFile{}, fmt.Errorf("%w: %s: %d bytes, more than the %d allowed", ErrUnsupported, hdr.Name, hdr.Size, MaxObjectSize)
		}
		body, err := io.ReadAll(io.LimitReader(tr, MaxObjectSize))
		if err != nil {
			return ObjectFile{}, fmt.Errorf("%w: %s: %v", ErrUnsupported, hdr.Name, err)
		}
		name := path.Base(path.Clean("/" + hdr.Name))
		if err := validFileName(name); err != nil {
			return ObjectFile{}, fmt.Errorf("%w: %v", ErrUnsupported, err)
		}
		return ObjectFile{Name: name, Data: body}, nil
	}
}
