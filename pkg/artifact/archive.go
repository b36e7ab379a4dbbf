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
	"sync/atomic"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/oci"
)

// openArchive unpacks the layout archive ref.Path into a temporary directory
// and opens it as a layout. Closing the target writes the archive back, whole
// and atomically, if anything was pushed or tagged.
func openArchive(ctx context.Context, ref Reference, create bool) (*Target, error) {
	dir, err := os.MkdirTemp("", "bpfd-oci-archive-")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	switch err := untar(ref.Path, dir); {
	case errors.Is(err, fs.ErrNotExist) && create:
	case errors.Is(err, fs.ErrNotExist):
		cleanup()
		return nil, fmt.Errorf("%s: %w", ref, ErrNotFound)
	case err != nil:
		cleanup()
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	store, err := oci.NewWithContext(ctx, dir)
	if err != nil {
		if cause := explainLayout(ctx, dir); cause != nil {
			err = cause
		}
		cleanup()
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	w := &writeTracking{Store: store}
	return &Target{
		GraphTarget: w,
		Ref:         ref,
		discard:     cleanup,
		close: func() error {
			defer cleanup()
			if !w.written.Load() {
				return nil
			}
			removeEmptyIngest(dir)
			if err := writeTar(dir, ref.Path); err != nil {
				return fmt.Errorf("%s: write archive: %w", ref, err)
			}
			return nil
		},
	}, nil
}

// writeTracking is an OCI store that remembers whether it was written to.
type writeTracking struct {
	*oci.Store
	written atomic.Bool
}

func (w *writeTracking) Push(ctx context.Context, expected ocispec.Descriptor, r io.Reader) error {
	w.written.Store(true)
	return w.Store.Push(ctx, expected, r)
}

func (w *writeTracking) Tag(ctx context.Context, desc ocispec.Descriptor, reference string) error {
	w.written.Store(true)
	return w.Store.Tag(ctx, desc, reference)
}

// untar extracts the regular files and directories of the tar file src into
// dir, refusing entries that would land outside it.
func untar(src, dir string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("not a tar archive of an OCI layout: %w", err)
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
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
			}
		default:
			return fmt.Errorf("archive entry %q: unsupported type %q", hdr.Name, hdr.Typeflag)
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
