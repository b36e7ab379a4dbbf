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
	"path"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
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
	programs, err := bpfmanPrograms(ic.Config.Labels)
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
	for name := range programs {
		if _, _, ok := cfg.Program(name); !ok {
			return fmt.Errorf("%w: label %s names program %s, which %s does not define", ErrUnsupported, LabelPrograms, name, obj.Name)
		}
	}
	cfg.Build.Source = mc.Annotations[ocispec.AnnotationSource]
	cfg.Build.Revision = mc.Annotations[ocispec.AnnotationRevision]
	mc.Config = *cfg
	mc.objects = []ObjectFile{obj}
	return nil
}

// bpfmanPrograms returns the programs the labels name, with their bpfman
// types, or ErrUnsupported when the image is not a bpfman image.
func bpfmanPrograms(labels map[string]string) (map[string]string, error) {
	if raw, ok := labels[LabelPrograms]; ok {
		var programs map[string]string
		if err := json.Unmarshal([]byte(raw), &programs); err != nil {
			return nil, fmt.Errorf("%w: label %s is not a JSON object of program names: %v", ErrUnsupported, LabelPrograms, err)
		}
		if raw, ok := labels[LabelMaps]; ok {
			var maps map[string]string
			if err := json.Unmarshal([]byte(raw), &maps); err != nil {
				return nil, fmt.Errorf("%w: label %s is not a JSON object of map names: %v", ErrUnsupported, LabelMaps, err)
			}
		}
		return programs, nil
	}
	if name, ok := labels[labelV1FunctionName]; ok {
		return map[string]string{name: labels[labelV1ProgramType]}, nil
	}
	return nil, fmt.Errorf("%w: a container image without the %s label, not bytecode", ErrUnsupported, LabelPrograms)
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
