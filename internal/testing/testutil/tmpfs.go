package testutil

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// Tmpfs mounts a tmpfs of size (a tmpfs size option: 512k, 8m) on a new
// directory, unmounted when the test ends, for tests of full or read-only
// file systems. flags are mount flags, e.g. unix.MS_RDONLY.
func Tmpfs(tb testing.TB, size string, flags uintptr) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", flags, "size="+size); err != nil {
		tb.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	tb.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// Fill writes the file path until its file system is full.
func Fill(tb testing.TB, path string) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, unix.ENOSPC) {
				return
			}
			tb.Fatal(err)
		}
	}
}
