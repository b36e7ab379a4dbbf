package badinput

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ExpectOK is the class of a control entry: a valid input, built the way the
// bad ones are, that must be accepted. Controls prove that the bad entries
// fail for the fault they carry rather than for the way they were built.
const ExpectOK = "ok"

// Corpus is the corpus directory, testdata/bad.
type Corpus struct {
	// Dir is the corpus directory.
	Dir string
	// Bytecode is the directory of the example objects that "@name" names
	// (the repository's bytecode/).
	Bytecode string
}

// Locate finds testdata/bad and bytecode/ in the repository holding the
// current directory: tests run in their package's directory.
func Locate() (*Corpus, error) {
	dir, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			c := &Corpus{Dir: filepath.Join(dir, "testdata", "bad"), Bytecode: filepath.Join(dir, "bytecode")}
			if _, err := os.Stat(c.Dir); err != nil {
				return nil, fmt.Errorf("corpus: %w", err)
			}
			return c, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, errors.New("corpus: no go.mod above the current directory")
		}
		dir = parent
	}
}

// Surfaces lists the surfaces of the corpus: its directories that hold a
// corpus.yaml, sorted.
func (c *Corpus) Surfaces() ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(c.Dir, "*", tableFile))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range matches {
		out = append(out, filepath.Base(filepath.Dir(m)))
	}
	slices.Sort(out)
	return out, nil
}

// Object returns bytecode/<name>.bpf.o.
func (c *Corpus) Object(name string) ([]byte, error) {
	return os.ReadFile(c.objectPath(name))
}

func (c *Corpus) objectPath(name string) string {
	return filepath.Join(c.Bytecode, name+".bpf.o")
}

// RPCs are the bpfd.v1 methods request entries are sent to.
var RPCs = []string{"Load", "Unload", "Get", "List", "UpdateOwner", "Inventory", "Top", "Events", "MapDump", "MapGet", "MapUpdate", "MapDelete"}

// tableFile is the name of a surface's table.
const tableFile = "corpus.yaml"

// Table is a surface's corpus.yaml: what the surface is and its entries.
type Table struct {
	// Surface is the directory's name: elf, artifact, signature, policy,
	// config, reference or request.
	Surface string `yaml:"surface"`
	// About says what the entries are fed to.
	About string `yaml:"about"`
	// Subject is the entry, as "surface/name", whose artifact the entries'
	// signatures or attestations are stored next to (signature,
	// attestation).
	Subject string `yaml:"subject"`
	// With lists entries, as "surface/name", written into every entry's
	// layout beside the subject (attestation: the subject's valid
	// signature).
	With []string `yaml:"with"`
	// Entries in file order.
	Entries []*Entry `yaml:"entries"`

	dir    string
	corpus *Corpus
}

// Entry is one input and the error it must produce.
type Entry struct {
	// Name is unique within the surface.
	Name string `yaml:"name"`
	// About says what is wrong with the input.
	About string `yaml:"about"`
	// Expect is the class of error the input must produce (the surface's
	// runner maps it to a sentinel error or a denial reason), or ExpectOK.
	Expect string `yaml:"expect"`
	// Message is text the error must contain: the thing at fault and the
	// cause. It is a template (see Expand): {{dir}} is where the entry's
	// files are, {{digest NAME}} a blob's digest.
	Message string `yaml:"message"`

	// Input is the input itself, for surfaces whose input is one line (a
	// reference).
	Input string `yaml:"input"`
	// RPC is the method a request entry's file (a protojson message, a
	// template) is sent to: one of RPCs (request only).
	RPC string `yaml:"rpc"`
	// Reason is the google.rpc.ErrorInfo reason the refusal must carry, an
	// ErrorReason name without its ERROR_REASON_ prefix (request only).
	Reason string `yaml:"reason"`
	// Files are the input files, relative to the surface's directory;
	// "@name" is the example object bytecode/<name>.bpf.o.
	Files []string `yaml:"files"`

	// Dir is the directory of the entry's blobs (artifact, signature),
	// relative to the surface's directory; the default is Name.
	Dir string `yaml:"dir"`
	// Base is another entry of the surface whose blobs this entry has too,
	// unless its own directory holds a blob of the same name.
	Base string `yaml:"base"`
	// Root is the blob of the manifest or index the layout tags (artifact);
	// the default is index.json if there is one, else manifest.json.
	Root string `yaml:"root"`
	// MediaType is the media type of the root's descriptor; the default is
	// the root blob's own mediaType field.
	MediaType string `yaml:"mediaType"`
	// Format is how a signature or attestation entry's manifest.json is
	// stored: bundle (a referrer of the subject) or legacy (tagged
	// sha256-<hex>.sig, or .att for an attestation).
	Format string `yaml:"format"`
	// Ops lists the operations that must fail (artifact: fetch, inspect);
	// empty means all of them. The others are not checked.
	Ops []string `yaml:"ops"`
	// Swap stores, at the digest of the first blob, the content of the
	// second: a blob that does not match its digest.
	Swap map[string]string `yaml:"swap"`
	// Omit lists blobs that are referred to but not stored.
	Omit []string `yaml:"omit"`

	table *Table
}

// Table reads and checks the corpus.yaml of a surface.
func (c *Corpus) Table(surface string) (*Table, error) {
	dir := filepath.Join(c.Dir, surface)
	path := filepath.Join(dir, tableFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t := &Table{dir: dir, corpus: c}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := t.check(surface); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// check reports the first mistake in a table.
func (t *Table) check(surface string) error {
	if t.Surface != surface {
		return fmt.Errorf("surface %q is in directory %s", t.Surface, surface)
	}
	seen := map[string]bool{}
	for i, e := range t.Entries {
		e.table = t
		switch {
		case e.Name == "":
			return fmt.Errorf("entries[%d]: no name", i)
		case seen[e.Name]:
			return fmt.Errorf("entry %s: name used twice", e.Name)
		case e.Expect == "":
			return fmt.Errorf("entry %s: no expect", e.Name)
		case e.Expect != ExpectOK && e.Message == "":
			return fmt.Errorf("entry %s: no message", e.Name)
		case e.About == "":
			return fmt.Errorf("entry %s: no about", e.Name)
		case e.Base != "" && t.entry(e.Base) == nil:
			return fmt.Errorf("entry %s: base %s is not an earlier entry", e.Name, e.Base)
		case e.Format != "" && e.Format != "bundle" && e.Format != "legacy":
			return fmt.Errorf("entry %s: format %q: want bundle or legacy", e.Name, e.Format)
		case t.Surface == "request" && !slices.Contains(RPCs, e.RPC):
			return fmt.Errorf("entry %s: rpc %q: want one of %s", e.Name, e.RPC, strings.Join(RPCs, ", "))
		case t.Surface == "request" && len(e.Files) != 1:
			return fmt.Errorf("entry %s: %d files, want the one request", e.Name, len(e.Files))
		case t.Surface != "request" && (e.RPC != "" || e.Reason != ""):
			return fmt.Errorf("entry %s: rpc and reason are for request entries", e.Name)
		}
		seen[e.Name] = true
		for _, f := range e.Files {
			if _, err := os.Stat(e.FilePath(f)); err != nil {
				return fmt.Errorf("entry %s: %w", e.Name, err)
			}
		}
		if t.Surface == "artifact" || t.Surface == "signature" {
			if _, err := os.Stat(e.dir()); err != nil {
				return fmt.Errorf("entry %s: %w", e.Name, err)
			}
		}
	}
	return nil
}

// entry returns the entry named name, or nil.
func (t *Table) entry(name string) *Entry {
	for _, e := range t.Entries {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// Bad returns the entries that are not controls.
func (t *Table) Bad() []*Entry {
	var out []*Entry
	for _, e := range t.Entries {
		if e.Expect != ExpectOK {
			out = append(out, e)
		}
	}
	return out
}

// Dir returns the surface's directory.
func (t *Table) Dir() string { return t.dir }

// Surface returns the name of the entry's surface.
func (e *Entry) Surface() string { return e.table.Surface }

// FilePath returns the path of one of the entry's Files.
func (e *Entry) FilePath(name string) string {
	if obj, ok := strings.CutPrefix(name, "@"); ok {
		return e.table.corpus.objectPath(obj)
	}
	return filepath.Join(e.table.dir, name)
}

// FilePaths returns the paths of the entry's Files.
func (e *Entry) FilePaths() []string {
	out := make([]string, len(e.Files))
	for i, f := range e.Files {
		out[i] = e.FilePath(f)
	}
	return out
}

// Fails reports whether operation op must fail for the entry.
func (e *Entry) Fails(op string) bool {
	return e.Expect != ExpectOK && (len(e.Ops) == 0 || slices.Contains(e.Ops, op))
}

// dir returns the directory of the entry's own blobs.
func (e *Entry) dir() string {
	d := e.Dir
	if d == "" {
		d = e.Name
	}
	return filepath.Join(e.table.dir, d)
}

// blobDirs returns the directories the entry's blobs are found in: its own,
// then its base's, and so on.
func (e *Entry) blobDirs() []string {
	var dirs []string
	for cur := e; cur != nil; cur = cur.table.entry(cur.Base) {
		dirs = append(dirs, cur.dir())
		if cur.Base == "" {
			break
		}
	}
	return dirs
}

// Raw returns the blob name of the entry as written in the corpus, before
// expansion: from its directory, else its base's. It wraps fs.ErrNotExist
// when the entry has no such blob.
func (e *Entry) Raw(name string) ([]byte, error) {
	for _, d := range e.blobDirs() {
		data, err := os.ReadFile(filepath.Join(d, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		return data, err
	}
	return nil, fmt.Errorf("entry %s: blob %s: %w", e.Name, name, fs.ErrNotExist)
}

// blobNames lists the blobs of the entry: the files of its directory and of
// its bases, without repeats, sorted.
func (e *Entry) blobNames() ([]string, error) {
	seen := map[string]bool{}
	for _, d := range e.blobDirs() {
		files, err := os.ReadDir(d)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if f.Type().IsRegular() {
				seen[f.Name()] = true
			}
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}
