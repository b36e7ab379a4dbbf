package maps_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
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

func init() {
	// reader opens map args[1] of the volume at args[0] and answers each
	// line: "read K" with the value at key K or the error, "write K V"
	// with "ok" or the error, "readonly" with whether the volume is.
	testutil.RegisterUnprivileged("reader", func(args []string, in *bufio.Scanner, out io.Writer) error {
		v, err := maps.Open(args[0])
		if err != nil {
			return err
		}
		m, err := v.Map(args[1])
		if err != nil {
			fmt.Fprintf(out, "error: %v\n", err)
			for in.Scan() {
				fmt.Fprintf(out, "error: %v\n", err)
			}
			return nil
		}
		defer m.Close()
		for in.Scan() {
			f := strings.Fields(in.Text())
			switch {
			case len(f) == 2 && f[0] == "read":
				key, _ := strconv.ParseUint(f[1], 10, 32)
				var val uint64
				if err := m.Lookup(uint32(key), &val); err != nil {
					fmt.Fprintf(out, "error: %v\n", err)
					continue
				}
				fmt.Fprintln(out, val)
			case len(f) == 3 && f[0] == "write":
				key, _ := strconv.ParseUint(f[1], 10, 32)
				val, _ := strconv.ParseUint(f[2], 10, 64)
				if err := m.Put(uint32(key), val); err != nil {
					fmt.Fprintf(out, "error: %v\n", err)
					continue
				}
				fmt.Fprintln(out, "ok")
			case len(f) == 1 && f[0] == "readonly":
				fmt.Fprintln(out, v.ReadOnly())
			default:
				return fmt.Errorf("unknown request %q", in.Text())
			}
		}
		return nil
	})
	// names lists the maps of the volume at args[0].
	testutil.RegisterUnprivileged("names", func(args []string, _ *bufio.Scanner, out io.Writer) error {
		v, err := maps.Open(args[0])
		if err != nil {
			return err
		}
		names, err := v.Names()
		if err != nil {
			return err
		}
		fmt.Fprintln(out, strings.Join(names, " "))
		return nil
	})
}

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
// CAP_BPF open a pinned map: kernels before 6.5 refuse every bpf() command
// to it while kernel.unprivileged_bpf_disabled is set, later ones check
// the sysctl only when a map is created or a program loaded.
func unprivilegedMayOpen(t *testing.T) bool {
	t.Helper()
	return kernelAtLeast(t, 6, 5) || sysctl(t) == "0"
}

func TestUnprivilegedReader(t *testing.T) {
	testutil.RequirePrivileged(t)
	restore := setSysctl(t, "2")
	defer restore()
	t.Logf("kernel %s, kernel.unprivileged_bpf_disabled=%s", release(t), sysctl(t))
	m := counters(t, 42)

	t.Run("read-only volume: reads, is refused writes", func(t *testing.T) {
		dir := volume(t, fsGroup, 0o440, true, map[string]*ebpf.Map{"xdp_stats": m})
		p := testutil.StartUnprivileged(t, []uint32{fsGroup}, "reader", dir, "xdp_stats")
		got := p.Ask(t, "read 1")
		if !unprivilegedMayOpen(t) {
			wantRefused(t, got)
			return
		}
		if got != "42" {
			t.Fatalf("read key 1: %s, want 42", got)
		}
		if err := m.Put(uint32(1), uint64(43)); err != nil {
			t.Fatal(err)
		}
		if got := p.Ask(t, "read 1"); got != "43" {
			t.Errorf("read key 1 after the counter rose: %s, want 43", got)
		}
		if got := p.Ask(t, "readonly"); got != "true" {
			t.Errorf("ReadOnly %s, want true", got)
		}
		if got := p.Ask(t, "write 1 7"); !strings.HasPrefix(got, "error:") {
			t.Errorf("write on a read-only volume: %s, want an error", got)
		}
		assertValue(t, m, 1, 43)
	})

	t.Run("a pin of mode 0440 on a writable volume: opened read-only", func(t *testing.T) {
		dir := volume(t, fsGroup, 0o440, false, map[string]*ebpf.Map{"xdp_stats": m})
		p := testutil.StartUnprivileged(t, []uint32{fsGroup}, "reader", dir, "xdp_stats")
		got := p.Ask(t, "write 1 7")
		if !unprivilegedMayOpen(t) {
			wantRefused(t, got)
			return
		}
		if !strings.HasPrefix(got, "error:") {
			t.Errorf("write through a pin of mode 0440: %s, want an error", got)
		}
		if got := p.Ask(t, "readonly"); got != "false" {
			t.Errorf("ReadOnly %s, want false", got)
		}
		assertValue(t, m, 1, 43)
	})

	t.Run("read-write volume: writes", func(t *testing.T) {
		dir := volume(t, fsGroup, 0o660, false, map[string]*ebpf.Map{"xdp_stats": m})
		p := testutil.StartUnprivileged(t, []uint32{fsGroup}, "reader", dir, "xdp_stats")
		got := p.Ask(t, "write 2 9")
		if !unprivilegedMayOpen(t) {
			wantRefused(t, got)
			return
		}
		if got != "ok" {
			t.Fatalf("write on a read-write volume: %s", got)
		}
		assertValue(t, m, 2, 9)
	})

	t.Run("a process not in the volume's group is refused", func(t *testing.T) {
		dir := volume(t, fsGroup, 0o440, true, map[string]*ebpf.Map{"xdp_stats": m})
		out, stderr, err := testutil.RunUnprivileged(t, nil, "names", dir)
		if err == nil || !strings.Contains(stderr, "permission denied") {
			t.Errorf("listing a volume of another group: %v, %q, %q; want permission denied", err, out, stderr)
		}
		// The pin itself, named directly, is refused too.
		p := testutil.StartUnprivileged(t, nil, "reader", dir, "xdp_stats")
		if got := p.Ask(t, "read 1"); !strings.HasPrefix(got, "error:") {
			t.Errorf("a process outside the group read %s", got)
		}
	})

	t.Run("a map the volume does not hold", func(t *testing.T) {
		dir := volume(t, fsGroup, 0o440, true, map[string]*ebpf.Map{"xdp_stats": m, ".bss": counters(t, 0)})
		p := testutil.StartUnprivileged(t, []uint32{fsGroup}, "reader", dir, "other_map")
		got := p.Ask(t, "read 1")
		if !strings.Contains(got, "no such map in the volume") || !strings.Contains(got, "_bss, xdp_stats") {
			t.Errorf("opening a map the volume lacks: %s, want ErrNotFound naming the maps it holds", got)
		}
	})
}

func wantRefused(t *testing.T, got string) {
	t.Helper()
	if !strings.Contains(got, maps.ErrUnprivilegedBPFDisabled.Error()) || !strings.Contains(got, "kernel.unprivileged_bpf_disabled=") {
		t.Fatalf("on kernel %s with kernel.unprivileged_bpf_disabled=%s: %q, want ErrUnprivilegedBPFDisabled naming the sysctl", release(t), sysctl(t), got)
	}
	t.Logf("refused, as this kernel does: %s", got)
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
	dir := volume(t, fsGroup, 0o440, true, map[string]*ebpf.Map{"xdp_stats": m})
	p := testutil.StartUnprivileged(t, []uint32{fsGroup}, "reader", dir, "xdp_stats")
	if got := p.Ask(t, "read 1"); got != "42" {
		t.Fatalf("kernel %s, kernel.unprivileged_bpf_disabled=0: read key 1: %s, want 42", release(t), got)
	}
	if got := p.Ask(t, "write 1 7"); !strings.HasPrefix(got, "error:") {
		t.Errorf("write on a read-only volume: %s, want an error", got)
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
