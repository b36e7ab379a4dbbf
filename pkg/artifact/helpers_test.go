package artifact

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
)

// bytecodeDir holds the example objects the artifact spec describes.
const bytecodeDir = "../../bytecode"

// readObject reads an object file for a test.
func readObject(tb testing.TB, path string) ObjectFile {
	tb.Helper()
	o, err := ReadObjectFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return o
}

// example reads bytecode/<name>.bpf.o.
func example(tb testing.TB, name string) ObjectFile {
	tb.Helper()
	return readObject(tb, filepath.Join(bytecodeDir, name+".bpf.o"))
}

// writeTemp writes data to a file in a test's temporary directory.
func writeTemp(tb testing.TB, name string, data []byte) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

func (f ObjectFile) digest() digest.Digest { return digest.FromBytes(f.Data) }
