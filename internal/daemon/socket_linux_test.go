package daemon

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// TestSocketGroup: the socket takes a numeric group as a gid without
// looking it up, so a pod can give bpfd's socket the group its client runs
// with though bpfd's image lists no such group.
func TestSocketGroup(t *testing.T) {
	testutil.RequirePrivileged(t)
	cases := map[string]struct {
		group   string
		wantGID uint32
	}{
		"numeric gid no group file lists": {group: "4242", wantGID: 4242},
		"unknown name keeps bpfd's group": {group: "no-such-group-bpfd-test", wantGID: uint32(os.Getgid())},
		"none":                            {group: "", wantGID: uint32(os.Getgid())},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bpfd.sock")
			l, err := listenSocket(path, tc.group, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if gid := st.Sys().(*syscall.Stat_t).Gid; gid != tc.wantGID {
				t.Errorf("socket gid %d, want %d", gid, tc.wantGID)
			}
			if mode := st.Mode().Perm(); mode != socketMode {
				t.Errorf("socket mode %o, want %o", mode, socketMode)
			}
		})
	}
}
