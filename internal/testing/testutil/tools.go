package testutil

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Tool returns the path of an external program the tests use (registry,
// oras, cosign2, cosign3, ...): from PATH, else from the repository's
// bin/tools, where `make tools` builds them. It fails tb when neither has it.
func Tool(tb testing.TB, name string) string {
	tb.Helper()
	path, err := lookTool(name)
	if err != nil {
		tb.Fatalf("%s not found on PATH or in bin/tools (run `make tools`, which builds it): %v", name, err)
	}
	return path
}

func lookTool(name string) (string, error) {
	if path, err := exec.LookPath(name); err == nil {
		return path, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	path := filepath.Join(root, "bin", "tools", name)
	if _, err := os.Stat(path); err != nil {
		return "", err
	}
	return path, nil
}

// RepoRoot returns the repository's root: the nearest directory above the
// working directory (a test's package directory) that holds go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
