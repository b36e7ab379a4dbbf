package artifact

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
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
// It refuses empty and oversized files, and anything but a regular file
// (decided on the file opened, without waiting on a FIFO or device);
// Describe checks the contents.
func ReadObjectFile(path string) (ObjectFile, error) {
	return ReadObjectFileDigest(path, "")
}

// ReadObjectFileDigest is ReadObjectFile for a file whose content must have
// digest want (a "file:PATH@sha256:<hex>" reference): other content is
// refused with ErrDigestMismatch. An empty want checks nothing.
func ReadObjectFileDigest(path string, want digest.Digest) (ObjectFile, error) {
	if want != "" {
		if err := want.Validate(); err != nil {
			return ObjectFile{}, fmt.Errorf("%s: digest %q: %v: %w", path, want, err, ErrInvalidReference)
		}
	}
	f, info, err := openRegular(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			if errors.Is(pe.Err, errNotRegular) {
				return ObjectFile{}, fmt.Errorf("%s: %w: %v", path, ErrInvalidObject, pe.Err)
			}
			err = pe.Err // "open" is noise to a user
		}
		return ObjectFile{}, fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	switch {
	case info.Size() == 0:
		return ObjectFile{}, fmt.Errorf("%s: %w: empty file", path, ErrInvalidObject)
	case info.Size() > MaxObjectSize:
		return ObjectFile{}, fmt.Errorf("%s: %w: %d bytes, more than the %d allowed", path, ErrInvalidObject, info.Size(), MaxObjectSize)
	}
	// The file may grow after the stat: read at most one byte too many.
	data, err := io.ReadAll(io.LimitReader(f, MaxObjectSize+1))
	if err != nil {
		return ObjectFile{}, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > MaxObjectSize {
		return ObjectFile{}, fmt.Errorf("%s: %w: more than the %d bytes allowed", path, ErrInvalidObject, MaxObjectSize)
	}
	if want != "" {
		if got := want.Algorithm().FromBytes(data); got != want {
			return ObjectFile{}, fmt.Errorf("%s: %w: the file is %s, the reference names %s", path, ErrDigestMismatch, got, want)
		}
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
