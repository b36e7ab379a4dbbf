package badinput

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// RootTag is the tag of a layout's root.
const RootTag = "v1"

// Layout is an entry written as an OCI image layout.
type Layout struct {
	// Dir is the layout's directory.
	Dir string
	// Root is the descriptor tagged RootTag: the entry's manifest or index,
	// or, for a signature entry, the artifact its signatures are stored
	// next to.
	Root ocispec.Descriptor
}

// Ref returns the reference of the layout's root, "oci:DIR:v1".
func (l *Layout) Ref() string { return "oci:" + l.Dir + ":" + RootTag }

// Template returns the template of the entry's blobs: Blob expands them,
// with vars and the variables every entry has: key.hint and key.fingerprint,
// the corpus key's bundle hint and fingerprint.
func (e *Entry) Template(vars map[string]string) (*Template, error) {
	t, _, err := e.template(vars)
	return t, err
}

func (e *Entry) template(vars map[string]string) (*Template, *blobResolver, error) {
	key, err := e.table.corpus.SigningKey()
	if err != nil {
		return nil, nil, err
	}
	hint, fingerprint, err := keyIDs(key)
	if err != nil {
		return nil, nil, err
	}
	all := map[string]string{"key.hint": hint, "key.fingerprint": fingerprint}
	for k, v := range vars {
		all[k] = v
	}
	t := &Template{Vars: all, Key: key}
	b := &blobResolver{entry: e, template: t, done: map[string][]byte{}, busy: map[string]bool{}}
	t.Blob = b.blob
	return t, b, nil
}

// blobResolver expands an entry's blobs once each.
type blobResolver struct {
	entry    *Entry
	template *Template
	done     map[string][]byte
	busy     map[string]bool
	objects  []string // "@name" blobs resolved, in order
}

func (b *blobResolver) blob(name string) ([]byte, error) {
	if data, ok := b.done[name]; ok {
		return data, nil
	}
	if obj, ok := strings.CutPrefix(name, "@"); ok {
		data, err := b.entry.table.corpus.Object(obj)
		if err != nil {
			return nil, err
		}
		b.done[name] = data
		b.objects = append(b.objects, name)
		return data, nil
	}
	if b.busy[name] {
		return nil, fmt.Errorf("blob %s refers to itself", name)
	}
	b.busy[name] = true
	defer delete(b.busy, name)
	raw, err := b.entry.Raw(name)
	if err != nil {
		return nil, err
	}
	data := raw
	if !isBinary(name) {
		if data, err = b.template.Expand(raw); err != nil {
			return nil, fmt.Errorf("blob %s: %w", name, err)
		}
	}
	b.done[name] = data
	return data, nil
}

// isBinary reports whether a blob is stored as is, without expansion.
func isBinary(name string) bool {
	return !strings.HasSuffix(name, ".json")
}

// Vars of a signature entry, describing its subject.
func subjectVars(d ocispec.Descriptor) map[string]string {
	return map[string]string{
		"subject.digest":    d.Digest.String(),
		"subject.hex":       d.Digest.Encoded(),
		"subject.size":      strconv.FormatInt(d.Size, 10),
		"subject.mediaType": d.MediaType,
		"subject.sigtag":    strings.Replace(d.Digest.String(), ":", "-", 1) + ".sig",
		"subject.atttag":    strings.Replace(d.Digest.String(), ":", "-", 1) + ".att",
	}
}

// SubjectVars returns the variables a signature entry's templates are
// expanded with, for the artifact the entries' signatures are stored next
// to, and that artifact's blobs by digest; nil for other surfaces.
func (t *Table) SubjectVars() (map[string]string, map[digest.Digest][]byte, error) {
	if t.Subject == "" {
		return nil, nil, nil
	}
	w := &layoutWriter{blobs: map[digest.Digest][]byte{}}
	subject, err := t.corpus.entryAt(t.Subject)
	if err != nil {
		return nil, nil, err
	}
	desc, err := w.addEntry(subject, nil, "")
	if err != nil {
		return nil, nil, fmt.Errorf("subject %s: %w", t.Subject, err)
	}
	return subjectVars(desc), w.blobs, nil
}

// entryAt returns the entry "surface/name".
func (c *Corpus) entryAt(path string) (*Entry, error) {
	surface, name, ok := strings.Cut(path, "/")
	if !ok {
		return nil, fmt.Errorf("entry %q: want surface/name", path)
	}
	t, err := c.Table(surface)
	if err != nil {
		return nil, err
	}
	e := t.entry(name)
	if e == nil {
		return nil, fmt.Errorf("entry %q: no such entry", path)
	}
	return e, nil
}

// WriteLayout writes the entry (artifact or signature) as an OCI image
// layout in dir, creating it. Every blob of the entry is stored, but those
// it omits, each under its digest; manifests are listed in index.json: the
// root tagged RootTag, a legacy signature manifest tagged sha256-<hex>.sig.
func (e *Entry) WriteLayout(dir string) (*Layout, error) {
	w := &layoutWriter{blobs: map[digest.Digest][]byte{}}
	var vars map[string]string
	var root ocispec.Descriptor
	if e.table.Subject != "" {
		subject, err := e.table.corpus.entryAt(e.table.Subject)
		if err != nil {
			return nil, err
		}
		if root, err = w.addEntry(subject, nil, RootTag); err != nil {
			return nil, fmt.Errorf("subject %s: %w", e.table.Subject, err)
		}
		vars = subjectVars(root)
	}
	for _, with := range e.table.With {
		other, err := e.table.corpus.entryAt(with)
		if err != nil {
			return nil, err
		}
		tag := ""
		if other.Format == "legacy" {
			tag = vars["subject.sigtag"]
		}
		if _, err := w.addEntry(other, vars, tag); err != nil {
			return nil, fmt.Errorf("with %s: %w", with, err)
		}
	}
	switch e.table.Surface {
	case "signature", "attestation":
		tag := ""
		if e.Format == "legacy" {
			tag = vars["subject.sigtag"]
			if e.table.Surface == "attestation" {
				tag = vars["subject.atttag"]
			}
		}
		if _, err := w.addEntry(e, vars, tag); err != nil {
			return nil, fmt.Errorf("entry %s: %w", e.Name, err)
		}
	default:
		var err error
		if root, err = w.addEntry(e, vars, RootTag); err != nil {
			return nil, fmt.Errorf("entry %s: %w", e.Name, err)
		}
	}
	if err := w.write(dir); err != nil {
		return nil, err
	}
	return &Layout{Dir: dir, Root: root}, nil
}

// layoutWriter collects the blobs and index entries of a layout.
type layoutWriter struct {
	blobs     map[digest.Digest][]byte
	manifests []ocispec.Descriptor
}

// addEntry adds every blob of e, expanded with vars, and lists its root
// (manifest.json for a signature entry) in the index, tagged tag if not
// empty; it returns the root's descriptor.
func (w *layoutWriter) addEntry(e *Entry, vars map[string]string, tag string) (ocispec.Descriptor, error) {
	t, b, err := e.template(vars)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	names, err := e.blobNames()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	for _, n := range names { // expand all first: that finds the "@name" blobs
		if _, err := t.Blob(n); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	resolver := t.Blob
	names = append(names, b.objects...)
	for _, n := range names {
		if slices.Contains(e.Omit, n) {
			continue
		}
		data, err := resolver(n)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		stored := data
		if other, ok := e.Swap[n]; ok {
			if stored, err = resolver(other); err != nil {
				return ocispec.Descriptor{}, err
			}
		}
		w.blobs[digest.FromBytes(data)] = stored
	}
	rootName := e.rootName(names)
	data, err := resolver(rootName)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := ocispec.Descriptor{MediaType: e.MediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if desc.MediaType == "" {
		desc.MediaType = MediaTypeOf(rootName, data)
	}
	listed := desc
	if tag != "" {
		listed.Annotations = map[string]string{ocispec.AnnotationRefName: tag}
	}
	w.manifests = append(w.manifests, listed)
	return desc, nil
}

// rootName returns the blob the entry's root is.
func (e *Entry) rootName(names []string) string {
	switch {
	case e.Root != "":
		return e.Root
	case e.table.Surface != "signature" && e.table.Surface != "attestation" && slices.Contains(names, "index.json"):
		return "index.json"
	}
	return "manifest.json"
}

// MediaTypeOf returns the mediaType field of the manifest or index blob name,
// else the OCI media type its name suggests: an index for index.json, else a
// manifest.
func MediaTypeOf(name string, data []byte) string {
	var v struct {
		MediaType string `json:"mediaType"`
	}
	if json.Unmarshal(data, &v) == nil && v.MediaType != "" {
		return v.MediaType
	}
	if name == "index.json" {
		return ocispec.MediaTypeImageIndex
	}
	return ocispec.MediaTypeImageManifest
}

// write writes the layout into dir.
func (w *layoutWriter) write(dir string) error {
	blobDir := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobDir, 0o755); err != nil {
		return err
	}
	for d, data := range w.blobs {
		if d.Algorithm() != digest.SHA256 {
			return errors.New("only sha256 blobs")
		}
		if err := os.WriteFile(filepath.Join(blobDir, d.Encoded()), data, 0o644); err != nil {
			return err
		}
	}
	layout, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), layout, 0o644); err != nil {
		return err
	}
	index, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: w.manifests,
	})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644)
}
