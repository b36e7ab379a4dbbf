package maps_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/maps"
)

func TestMain(m *testing.M) { testutil.LeakCheckMain(m) }

// fsGroup is the group the test's volumes are given to, as the driver
// gives them to a pod's fsGroup.
const fsGroup = 4242

// volume lays out a volume as the driver does: a directory of a new bpffs
// (whose root holds the kernel's iterators maps.debug and progs.debug, not
// the volume's) with the given maps pinned, the directory and the pins
// owned by root and group gid, the pins of mode pinMode, the file system
// read-only when readOnly. Its parents are searchable by everyone.
func volume(t *testing.T, gid int, pinMode os.FileMode, readOnly bool, pins map[string]*ebpf.Map) string {
	t.Helper()
	parent, err := os.MkdirTemp("", "bpfd-maps-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	const flags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if err := unix.Mount("bpffs", parent, "bpf", flags, "mode=0755"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(parent, unix.MNT_DETACH) })
	dir := filepath.Join(parent, "maps")
	if err := os.Mkdir(dir, 0o550); err != nil {
		t.Fatal(err)
	}
	for name, m := range pins {
		pin := filepath.Join(dir, maps.PinName(name))
		if err := m.Pin(pin); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(pin, 0, gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(pin, pinMode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(dir, 0, gid); err != nil {
		t.Fatal(err)
	}
	if readOnly {
		if err := unix.Mount("", parent, "", unix.MS_REMOUNT|unix.MS_RDONLY|flags, ""); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// counters returns an array map of 4 __u64 with value at key 1.
func counters(t *testing.T, value uint64) *ebpf.Map {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "counters", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.Put(uint32(1), value); err != nil {
		t.Fatal(err)
	}
	return m
}

// unprivilegedMayOpen reports whether this kernel lets a process without
// CAP_BPF open a pinned map: kernels before 5.19 refuse every bpf() command
// to it while kernel.unprivileged_bpf_disabled is set; from 5.19 ("bpf:
// refine kernel.unprivileged_bpf_disabled behaviour") the sysctl is checked
// only when a map is created or a program loaded.
func unprivilegedMayOpen(t *testing.T) bool {
	t.Helper()
	return kernelAtLeast(t, 5, 19) || sysctl(t) == "0"
}

func TestUnprivilegedReader(t *testing.T) {
	testutil.RequirePrivileged(t)
	restore := setSysctl(t, "2")
	defer restore()
	t.Logf("kernel %s, kernel.unprivileged_bpf_disabled=%s", release(t), sysctl(t))
	m := counters(t, 42)
	// open opens xdp_stats as a reader in fsGroup, checking that this
	// kernel refuses it exactly when it refuses bpf() to unprivileged
	// processes.
	open := func(t *testing.T, dir string) (*testutil.MapReader, bool) {
		t.Helper()
		r := testutil.StartMapReader(t, []uint32{fsGroup}, dir)
		err := r.Open(t, "xdp_stats")
		if !unprivilegedMayOpen(t) {
			var re *testutil.ReaderError
			if !errors.As(err, &re) || re.Kind != "unprivileged-bpf-disabled" || !strings.Contains(re.Message, "kernel.unprivileged_bpf_disabled=") {
				t.Fatalf("on kernel %s with kernel.unprivileged_bpf_disabled=%s: %v, want ErrUnprivilegedBPFDisabled naming the sysctl", release(t), sysctl(t), err)
			}
			t.Logf("refused, as this kernel does: %v", err)
			return nil, false
		}
		if err != nil {
			t.Fatalf("open xdp_stats: %v", err)
		}
		return r, true
	}

	t.Run("read-only volume: reads, is refused writes", func(t *testing.T) {
		r, ok := open(t, volume(t, fsGroup, 0o440, true, map[string]*ebpf.Map{"xdp_stats": m}))
		if !ok {
			return
		}
		if got, err := r.Read(t, 1); err != nil || got != 42 {
			t.Fatalf("read key 1: %d, %v; want 42", got, err)
		}
		if err := m.Put(uint32(1), uint64(43)); err != nil {
			t.Fatal(err)
		}
		if got, err := r.Read(t, 1); err != nil || got != 43 {
			t.Errorf("read key 1 after the counter rose: %d, %v; want 43", got, err)
		}
		if !r.ReadOnly(t) {
			t.Error("ReadOnly false on a read-only volume")
		}
		if err := r.Write(t, 1, 7); !isKind(err, "EPERM") {
			t.Errorf("write on a read-only volume: %v, want EPERM", err)
		}
		assertValue(t, m, 1, 43)
	})

	t.Run("a pin of mode 0440 on a writable volume: opened read-only", func(t *testing.T) {
		r, ok := open(t, volume(t, fsGroup, 0o440, false, map[string]*ebpf.Map{"xdp_stats": m}))
		if !ok {
			return
		}
		if r.ReadOnly(t) {
			t.Error("ReadOnly true on a writable volume")
		}
		if err := r.Write(t, 1, 7); !isKind(err, "EPERM") {
			t.Errorf("write through a pin of mode 0440: %v, want EPERM", err)
		}
		assertValue(t, m, 1, 43)
	})

	t.Run("read-write volume: writes", func(t *testing.T) {
		r, ok := open(t, volume(t, fsGroup, 0o660, false, map[string]*ebpf.Map{"xdp_stats": m}))
		if !ok {
			return
		}
		if err := r.Write(t, 2, 9); err != nil {
			t.Fatalf("write on a read-write volume: %v", err)
		}
		assertValue(t, m, 2, 9)
	})

	t.Run("a process not in the volume's group is refused", func(t *testing.T) {
		dir := volume(t, fsGroup, 0o440, true, map[string]*ebpf.Map{"xdp_stats": m})
		r := testutil.StartMapReader(t, nil, dir)
		if names, err := r.Names(t); !isKind(err, "EACCES") {
			t.Errorf("listing a volume of another group: %v, %v; want EACCES", names, err)
		}
		if err := r.Open(t, "xdp_stats"); !isKind(err, "EACCES") {
			t.Errorf("opening a map of a volume of another group: %v, want EACCES", err)
		}
	})

	t.Run("a map the volume does not hold", func(t *testing.T) {
		dir := volume(t, fsGroup, 0o440, true, map[string]*ebpf.Map{"xdp_stats": m, ".bss": counters(t, 0)})
		r := testutil.StartMapReader(t, []uint32{fsGroup}, dir)
		err := r.Open(t, "other_map")
		if !isKind(err, "not-found") || !strings.Contains(err.Error(), "_bss, xdp_stats") {
			t.Errorf("opening a map the volume lacks: %v, want ErrNotFound naming the maps it holds", err)
		}
	})
}

func isKind(err error, kind string) bool {
	var re *testutil.ReaderError
	return errors.As(err, &re) && re.Kind == kind
}

// TestUnprivilegedReaderSysctlOff measures what an unprivileged reader
// gets on this kernel with kernel.unprivileged_bpf_disabled=0, which older
// kernels need for it to open a pinned map at all.
func TestUnprivilegedReaderSysctlOff(t *testing.T) {
	testutil.RequirePrivileged(t)
	if sysctl(t) == "1" {
		t.Skip("kernel.unprivileged_bpf_disabled=1 cannot be changed until reboot")
	}
	restore := setSysctl(t, "0")
	defer restore()
	m := counters(t, 42)
	r := testutil.StartMapReader(t, []uint32{fsGroup}, volume(t, fsGroup, 0o440, true, map[string]*ebpf.Map{"xdp_stats": m}))
	if err := r.Open(t, "xdp_stats"); err != nil {
		t.Fatalf("kernel %s, kernel.unprivileged_bpf_disabled=0: open: %v", release(t), err)
	}
	if got, err := r.Read(t, 1); err != nil || got != 42 {
		t.Fatalf("kernel %s, kernel.unprivileged_bpf_disabled=0: read key 1: %d, %v; want 42", release(t), got, err)
	}
	if err := r.Write(t, 1, 7); !isKind(err, "EPERM") {
		t.Errorf("write on a read-only volume: %v, want EPERM", err)
	}
}

func TestOpenErrors(t *testing.T) {
	testutil.RequirePrivileged(t)
	if _, err := maps.Open(t.TempDir()); !errors.Is(err, maps.ErrNotVolume) {
		t.Errorf("Open of a plain directory: %v, want ErrNotVolume", err)
	}
	if _, err := maps.Open(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing directory: %v, want ErrNotExist", err)
	}
	dir := volume(t, fsGroup, 0o440, true, map[string]*ebpf.Map{"xdp_stats": counters(t, 1)})
	v, err := maps.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "missing", "../maps", "a/b", ".."} {
		if m, err := v.Map(name); !errors.Is(err, maps.ErrNotFound) {
			if m != nil {
				m.Close()
			}
			t.Errorf("Map(%q): %v, want ErrNotFound", name, err)
		}
	}
	// Root too gets the map read-only from a read-only volume.
	m, err := v.Map("xdp_stats")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Put(uint32(1), uint64(2)); !errors.Is(err, unix.EPERM) {
		t.Errorf("write through a read-only volume as root: %v, want EPERM", err)
	}
}

func assertValue(t *testing.T, m *ebpf.Map, key uint32, want uint64) {
	t.Helper()
	var got uint64
	if err := m.Lookup(key, &got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("key %d holds %d, want %d", key, got, want)
	}
}

func sysctl(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(maps.UnprivilegedBPFDisabledSysctl)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// setSysctl sets kernel.unprivileged_bpf_disabled unless it is 1, which
// the kernel keeps until reboot (1 disables as 2 does), and returns a
// function that restores the value it had.
func setSysctl(t *testing.T, value string) func() {
	t.Helper()
	old := sysctl(t)
	if old == value || old == "1" {
		return func() {}
	}
	write := func(v string) {
		if err := os.WriteFile(maps.UnprivilegedBPFDisabledSysctl, []byte(v), 0o644); err != nil {
			t.Fatalf("set kernel.unprivileged_bpf_disabled=%s: %v", v, err)
		}
	}
	write(value)
	return func() { write(old) }
}

func release(t *testing.T) string {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	return unix.ByteSliceToString(u.Release[:])
}

func kernelAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	var maj, min int
	if _, err := fmt.Sscanf(release(t), "%d.%d", &maj, &min); err != nil {
		t.Fatalf("kernel release %q: %v", release(t), err)
	}
	return maj > major || maj == major && min >= minor
}
