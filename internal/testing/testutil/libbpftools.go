package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// LibbpfToolsDir is where LibbpfTool looks for bcc's tools: $BPFD_LIBBPF_TOOLS
// (make test-vm stages copies in bin/libbpf-tools for the kernel VM, which
// has no /usr/sbin of its own), else /usr/sbin, where Debian's libbpf-tools
// package installs them.
func LibbpfToolsDir() string {
	if d := os.Getenv("BPFD_LIBBPF_TOOLS"); d != "" {
		return d
	}
	return "/usr/sbin"
}

// LibbpfTool returns the path of bcc's tool name (e.g. "opensnoop") from
// Debian's libbpf-tools package, failing tb when it is missing: `make tools`
// installs the package.
func LibbpfTool(tb testing.TB, name string) string {
	tb.Helper()
	path := filepath.Join(LibbpfToolsDir(), name)
	if _, err := os.Stat(path); err != nil {
		tb.Fatalf("bcc's %s (Debian's libbpf-tools): %v; run make tools", name, err)
	}
	return path
}
