package artifact

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MaxObjectSize bounds the size of one object file, in a build and in a
// layer being read (after decompression, for bpfman images).
const MaxObjectSize = 64 << 20

// ObjectFile is a BPF ELF object file: its name, without directories, and its
// contents.
type ObjectFile struct {
	Name string
	Data []byte
	// Path, if set, is where the object was read from; errors name the
	// object by it rather than by Name.
	Path string
}

// label names the object in errors.
func (f ObjectFile) label() string {
	if f.Path != "" {
		return f.Path
	}
	return f.Name
}

// ReadObjectFile reads the object file at path and names it by its base name.
// It refuses empty and oversized files; Describe checks the contents.
func ReadObjectFile(path string) (ObjectFile, error) {
	info, err := os.Stat(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // "stat" is noise to a user
		}
		return ObjectFile{}, fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case !info.Mode().IsRegular():
		return ObjectFile{}, fmt.Errorf("%s: %w: not a regular file", path, ErrInvalidObject)
	case info.Size() == 0:
		return ObjectFile{}, fmt.Errorf("%s: %w: empty file", path, ErrInvalidObject)
	case info.Size() > MaxObjectSize:
		return ObjectFile{}, fmt.Errorf("%s: %w: %d bytes, more than the %d allowed", path, ErrInvalidObject, info.Size(), MaxObjectSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return ObjectFile{}, err // *fs.PathError names the path
	}
	return ObjectFile{Name: filepath.Base(path), Data: data, Path: path}, nil
}

// validFileName reports whether name can be written into a directory as is:
// a plain file name, no path, nothing hidden behind control characters.
func validFileName(name string) error {
	switch {
	case name == "", name == ".", name == "..":
		return fmt.Errorf("file name %q is not a file name", name)
	case strings.ContainsAny(name, `/\`):
		return fmt.Errorf("file name %q contains a path separator", name)
	case strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return fmt.Errorf("file name %q contains control characters", name)
	}
	return nil
}
