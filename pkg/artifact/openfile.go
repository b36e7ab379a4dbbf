package artifact

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// openRegular opens the file at path for reading only if it is a regular
// file, deciding on the file opened rather than on the path (no window
// between a check and the open). The open does not wait: a FIFO without a
// writer, a terminal or a device that blocks is opened without blocking,
// found not regular and closed. Symbolic links are followed.
func openRegular(path string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, nil, &fs.PathError{Op: "open", Path: path, Err: notRegular(info.Mode())}
	}
	return f, info, nil
}

// errNotRegular: a path names something other than a regular file.
var errNotRegular = errors.New("not a regular file")

// notRegular says what a file that is not regular is.
func notRegular(mode fs.FileMode) error {
	kind := "a directory"
	switch {
	case mode&fs.ModeNamedPipe != 0:
		kind = "a FIFO"
	case mode&fs.ModeSocket != 0:
		kind = "a socket"
	case mode&fs.ModeCharDevice != 0:
		kind = "a character device"
	case mode&fs.ModeDevice != 0:
		kind = "a block device"
	case mode&fs.ModeIrregular != 0:
		kind = "an irregular file"
	}
	return fmt.Errorf("%w (%s)", errNotRegular, kind)
}
