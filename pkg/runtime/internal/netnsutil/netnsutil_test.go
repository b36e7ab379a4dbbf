package netnsutil_test

import (
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/runtime/internal/netnsutil"
)

func TestDoAndHandle(t *testing.T) {
	v := testutil.NewVethPair(t)
	err := netnsutil.Do(v.Netns, func() error {
		_, err := netlink.LinkByName(v.Peer)
		return err
	})
	if err != nil {
		t.Errorf("peer %s not visible inside %s: %v", v.Peer, v.Netns, err)
	}
	if _, err := netlink.LinkByName(v.Peer); err == nil {
		t.Errorf("peer %s visible outside its namespace: Do leaked the thread's namespace", v.Peer)
	}
	h, err := netnsutil.NetlinkHandle(v.Netns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.LinkByName(v.Peer); err != nil {
		t.Errorf("handle in %s: %v", v.Netns, err)
	}
}

func TestMissingNamespace(t *testing.T) {
	testutil.RequirePrivileged(t)
	const path = "/run/netns/bpfd-no-such-namespace"
	for name, err := range map[string]error{
		"Do":            netnsutil.Do(path, func() error { return nil }),
		"NetlinkHandle": func() error { _, err := netnsutil.NetlinkHandle(path); return err }(),
	} {
		var open *netnsutil.OpenError
		if !errors.As(err, &open) || open.Path != path || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: error %v, want an OpenError for %s wrapping fs.ErrNotExist", name, err, path)
		}
	}
}

// TestDoClosesBeforeReturning checks that no namespace handle Do opened is
// still open when it returns: callers count their descriptors to prove
// that a failed request left nothing behind.
func TestDoClosesBeforeReturning(t *testing.T) {
	v := testutil.NewVethPair(t)
	before := openFDs(t)
	for i := range 500 {
		if err := netnsutil.Do(v.Netns, func() error { return nil }); err != nil {
			t.Fatal(err)
		}
		if now := openFDs(t); now > before {
			t.Fatalf("call %d: %d file descriptors open after Do returned, want at most %d", i, now, before)
		}
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries) - 1 // ReadDir's own
}
