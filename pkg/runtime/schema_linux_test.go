package runtime_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	bolt "go.etcd.io/bbolt"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

// TestOpenRefusesNewerStore stamps a store holding a running XDP program
// with a schema version newer than this bpfd's: Open fails with
// ErrStoreTooNew and leaves the store file, the pins and the kernel as they
// were (the program keeps counting, its hook unchanged); stamped back, the
// next Open adopts the program.
func TestOpenRefusesNewerStore(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	v := newVethPair(t)
	ctx := context.Background()
	p := loadOne(t, m, "file:xdp_counter.bpf.o", "xdp_counter", progtype.XDP, runtime.XDPAttach{Interface: v.Peer, Netns: v.Netns}, nil)
	before, err := m.List(ctx, runtime.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hook := xdpProgID(t, v.Peer, v.Netns)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	storeFile := filepath.Join(e.stateDir, "bpfd.db")
	current := stampSchema(t, storeFile, "")
	next, _ := strconv.Atoi(current)
	stampSchema(t, storeFile, strconv.Itoa(next+1))
	sum := fileSum(t, storeFile)
	pins := bpffsTree(t, e.bpffs)

	_, err = runtime.Open(ctx, e.options(t))
	if !errors.Is(err, runtime.ErrStoreTooNew) {
		t.Fatalf("Open of a store of schema version %d: %v, want ErrStoreTooNew", next+1, err)
	}
	t.Logf("Open: %v", err)
	if fileSum(t, storeFile) != sum {
		t.Error("the refused store file changed")
	}
	if diff := cmp.Diff(pins, bpffsTree(t, e.bpffs)); diff != "" {
		t.Errorf("bpffs after the refusal (-before +after):\n%s", diff)
	}
	if got := xdpProgID(t, v.Peer, v.Netns); got != hook {
		t.Errorf("the interface runs program %d after the refusal, %d before", got, hook)
	}
	counter := mapPin(t, p, "xdp_stats")
	n := testutil.ReadU64(t, counter, udp)
	v.SendUDP(t, 10)
	eventually(t, "the program to count after the refusal", func() bool { return testutil.ReadU64(t, counter, udp) >= n+10 })

	stampSchema(t, storeFile, current)
	m2 := e.open(t)
	after, err := m2.List(ctx, runtime.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after, cmpopts.IgnoreFields(runtime.KernelInfo{}, "Stats")); diff != "" {
		t.Fatalf("programs after the refusal and a good open (-before +after):\n%s", diff)
	}
	if err := m2.Unload(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
}

// stampSchema sets the store's schema version to version ("" leaves it)
// and returns the version it had.
func stampSchema(t *testing.T, path, version string) string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var old string
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte("meta"))
		old = string(meta.Get([]byte("schema")))
		if version == "" {
			return nil
		}
		return meta.Put([]byte("schema"), []byte(version))
	})
	if err != nil {
		t.Fatal(err)
	}
	return old
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// bpffsTree lists every path under dir with its mode and, for pins, the
// inode: a pin replaced by another has another inode.
func bpffsTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	tree := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		tree[path] = info.Mode().String() + " inode " + strconv.FormatUint(info.Sys().(*syscall.Stat_t).Ino, 10)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}
