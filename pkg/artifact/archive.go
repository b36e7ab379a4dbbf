package artifact

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// openArchive unpacks the layout archive ref.Path into a temporary directory
// and opens it as a layout. Closing the target writes the archive back, whole
// and atomically, if anything was pushed or tagged.
func openArchive(ctx context.Context, ref Reference, create bool, limits Limits) (*Target, error) {
	dir, err := os.MkdirTemp("", "bpfd-oci-archive-")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	switch err := untar(ref.Path, dir, limits.WithDefaults()); {
	case errors.Is(err, fs.ErrNotExist) && create:
	case errors.Is(err, fs.ErrNotExist):
		cleanup()
		return nil, fmt.Errorf("%s: %w", ref, ErrNotFound)
	case err != nil:
		cleanup()
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	store, err := openLayoutStore(ctx, dir, limits)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return &Target{
		GraphTarget: store,
		Ref:         ref,
		discard:     cleanup,
		close: func() error {
			defer cleanup()
			if !store.wasWritten() {
				return nil
			}
			store.tidy()
			if err := writeTar(dir, ref.Path); err != nil {
				return fmt.Errorf("%s: write archive: %w", ref, err)
			}
			return nil
		},
	}, nil
}

// untar extracts the tar file src into dir: regular files and directories
// only (no links, devices or FIFOs), none landing outside dir, within
// limits.ArchiveSize bytes and limits.ArchiveEntries entries. src must be a
// regular file: a FIFO or device is refused without waiting on it.
func untar(src, dir string, limits Limits) error {
	f, _, err := openRegular(src)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && errors.Is(pe.Err, errNotRegular) {
			return fmt.Errorf("%w: %v", ErrUnsupported, pe.Err)
		}
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var entries int
	var size int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("not a tar archive of an OCI layout: %w", err)
		}
		if entries++; entries > limits.ArchiveEntries {
			return &LimitError{What: "archive entries", Limit: "ArchiveEntries", Value: int64(entries), Max: int64(limits.ArchiveEntries)}
		}
		name := filepath.Clean(hdr.Name)
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("archive entry %q escapes the layout", hdr.Name)
		}
		path := filepath.Join(dir, name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if size += hdr.Size; hdr.Size < 0 || size > limits.ArchiveSize {
				return &LimitError{What: "archive content", Limit: "ArchiveSize", Value: size, Max: limits.ArchiveSize}
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			// O_EXCL: an entry given twice is refused, not merged.
			out, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil {
				return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
			}
		default:
			return fmt.Errorf("archive entry %q: unsupported type %q (only files and directories)", hdr.Name, hdr.Typeflag)
		}
	}
}

// writeTar writes the tree under dir as a tar file at dst, through a
// temporary file renamed into place. Entries are sorted and carry no owner or
// time, so the same layout gives the same archive.
func writeTar(dir, dst string) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	tw := tar.NewWriter(tmp)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		if d.IsDir() && path == filepath.Join(dir, ingestDir) {
			return filepath.SkipDir // oras-go's scratch space, not the layout's
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Typeflag: tar.TypeReg, Size: info.Size(), Format: tar.FormatPAX}
		if d.IsDir() {
			hdr = &tar.Header{Name: filepath.ToSlash(rel) + "/", Mode: 0o755, Typeflag: tar.TypeDir, Format: tar.FormatPAX}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
