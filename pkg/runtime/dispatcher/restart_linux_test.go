package dispatcher_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// newBPFFS mounts a bpffs on a new temporary directory until the test ends.
func newBPFFS(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("bpffs", dir, "bpf", 0, "mode=0700"); err != nil {
		t.Fatalf("mount a bpffs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// pins lists the entries of dir, recursively, relative to it.
func pins(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return nil
	}
	err := filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestRestartAdoptsChain closes a pinned dispatcher as a stopping daemon
// would: the chain keeps running, and a new dispatcher on the same pins
// adopts it as it is, then rebuilds it; the last program leaving removes
// every pin.
func TestRestartAdoptsChain(t *testing.T) {
	forEachHook(t, func(t *testing.T, ct *chainTest, opts dispatcher.Options) {
		opts.PinDir = filepath.Join(newBPFFS(t), "hook")
		d, err := dispatcher.Open(ct.hook, opts)
		if err != nil {
			t.Fatal(err)
		}
		apply(t, d, opts.Mode, ct.first, ct.proceedOn(t, ct.stop, ct.stopProceeds...))
		before := d.State()
		t.Logf("pins: %v", pins(t, opts.PinDir))
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		ct.sendAndExpect(t, 10, [3]uint64{10, 10, 0})

		d = ct.open(t, opts)
		if diff := cmp.Diff(before, d.State()); diff != "" {
			t.Fatalf("State() of the adopted chain (-before +after):\n%s", diff)
		}
		apply(t, d, opts.Mode, ct.first, ct.proceedOn(t, ct.stop, ct.stopProceeds...), ct.last)
		ct.sendAndExpect(t, 10, [3]uint64{20, 20, 10})
		after := d.State()
		if opts.Mode == dispatcher.ModeFreplace {
			// The extension programs of the members that stayed are kept.
			for i := range before.Slots {
				if before.Slots[i].ProgramID != after.Slots[i].ProgramID {
					t.Errorf("slot %d: program %d replaced by %d", i, before.Slots[i].ProgramID, after.Slots[i].ProgramID)
				}
			}
		}
		gens := 0
		for _, p := range pins(t, opts.PinDir) {
			if filepath.Dir(p) == "." && p != "link" {
				gens++
			}
		}
		if gens != 1 {
			t.Errorf("pins %v: want one chain", pins(t, opts.PinDir))
		}

		if err := d.Apply(nil); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(opts.PinDir); !os.IsNotExist(err) {
			t.Fatalf("pin directory after the last program left: %v (%v)", pins(t, opts.PinDir), err)
		}
		ct.sendAndExpect(t, 10, [3]uint64{20, 20, 10})
	})
}

// TestOpenRemovesPinsOfGoneHook: when the interface went away with the
// daemon stopped, Open finds no chain and removes the pins.
func TestOpenRemovesPinsOfGoneHook(t *testing.T) {
	forEachHook(t, func(t *testing.T, ct *chainTest, opts dispatcher.Options) {
		opts.PinDir = filepath.Join(newBPFFS(t), "hook")
		d, err := dispatcher.Open(ct.hook, opts)
		if err != nil {
			t.Fatal(err)
		}
		apply(t, d, opts.Mode, ct.first)
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		ct.net.deleteVeth(t)

		d = ct.open(t, opts)
		if s := d.State(); s.ProgramID != 0 || len(s.Slots) != 0 {
			t.Fatalf("State() = %+v, want no chain", s)
		}
		if p := pins(t, opts.PinDir); len(p) != 0 {
			t.Fatalf("pins left: %v", p)
		}
	})
}
