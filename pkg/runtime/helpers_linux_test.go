package runtime_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
	"github.com/bpfd-dev/bpfd/pkg/runtime/internal/netnsutil"
)

// bytecodeDir holds the example objects the tests load.
var bytecodeDir, _ = filepath.Abs(filepath.Join("..", "..", "bytecode"))

// readBytecode returns the bytecode of a file reference, as bpfd's daemon
// hands it to Load once admitted: "file:NAME" reads bytecode/NAME,
// "file:/abs/path" that file. kinds are the program kinds its (pretend)
// policy rule allows; none allows any.
func readBytecode(ref string, kinds ...progtype.Kind) (*runtime.Bytecode, error) {
	path, ok := strings.CutPrefix(ref, "file:")
	if !ok {
		return nil, fmt.Errorf("test bytecode %s: file: references only", ref)
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(bytecodeDir, path)
	}
	elf, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(elf)
	return &runtime.Bytecode{
		Objects: []runtime.Object{{Name: filepath.Base(path), ELF: elf}},
		Provenance: runtime.Provenance{
			Reference:    ref,
			Digest:       "sha256:" + hex.EncodeToString(sum[:]),
			Signer:       "test-key",
			Rule:         "test-rule",
			AllowedKinds: kinds,
		},
	}, nil
}

// load loads req's programs from the bytecode of the file reference ref.
func load(ctx context.Context, m *runtime.Manager, ref string, req runtime.LoadRequest) ([]runtime.Program, error) {
	bc, err := readBytecode(ref)
	if err != nil {
		return nil, err
	}
	return m.Load(ctx, req, bc)
}

// fileLoad is a load request with the file reference of its bytecode.
type fileLoad struct {
	ref string
	req runtime.LoadRequest
}

// env is a Manager's directories: a state dir and a bpffs of its own.
type env struct {
	stateDir string
	bpffs    string
	// mode is the dispatcher mode Managers open with; "" probes.
	mode runtime.DispatcherMode
	// logs holds what the env's Managers logged.
	logs *logBuffer
}

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// logged returns what the env's Managers logged so far.
func (e *env) logged() string {
	e.logs.mu.Lock()
	defer e.logs.mu.Unlock()
	return e.logs.buf.String()
}

// newEnv makes a state dir and a bpffs directory (mounted by the first Open)
// that are removed, with everything pinned there, at the end of the test.
func newEnv(t testing.TB) *env {
	t.Helper()
	testutil.RequirePrivileged(t)
	dir := t.TempDir()
	e := &env{stateDir: filepath.Join(dir, "state"), bpffs: filepath.Join(dir, "bpffs"), logs: &logBuffer{}}
	t.Cleanup(func() {
		unix.Unmount(e.bpffs, unix.MNT_DETACH)
	})
	return e
}

// open opens a Manager on the env, closed at the end of the test.
func (e *env) open(t testing.TB) *runtime.Manager {
	t.Helper()
	m, err := runtime.Open(context.Background(), e.options(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// options are the Manager options of the env, logging to t: freplace XDP
// chains are pinned for libxdp under the env's bpffs, in e.libxdpDir().
func (e *env) options(t testing.TB) runtime.Options {
	var w io.Writer = testWriter{t}
	if e.logs != nil {
		w = io.MultiWriter(w, e.logs)
	}
	return runtime.Options{
		StateDir:       e.stateDir,
		BPFFS:          e.bpffs,
		DispatcherMode: e.mode,
		LibxdpDir:      e.libxdpDir(),
		Logger:         slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// libxdpDir is where the env's Managers pin freplace XDP chains for libxdp;
// xdp-loader finds them with LIBXDP_BPFFS set to the env's bpffs.
func (e *env) libxdpDir() string { return filepath.Join(e.bpffs, "xdp") }

// testWriter sends log lines to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// pinDirs returns the program directories under the bpffs: those named by
// an id.
func (e *env) pinDirs(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(e.bpffs)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, en := range entries {
		if _, err := runtime.ParseID(en.Name()); err == nil {
			names = append(names, en.Name())
		}
	}
	return names
}

// dispatcherDirs returns the hooks' directories under the bpffs' dispatchers
// directory, and the libxdp directory's entries.
func (e *env) dispatcherDirs(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, dir := range []string{filepath.Join(e.bpffs, "dispatchers"), e.libxdpDir()} {
		entries, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		for _, en := range entries {
			names = append(names, filepath.Join(filepath.Base(dir), en.Name()))
		}
	}
	return names
}

// vethPair is a veth pair: Host in the test's network namespace, Peer in a
// namespace the test created, with addresses in a random /30.
type vethPair = testutil.VethPair

// newVethPair creates a veth pair with its peer end in a new network
// namespace; both go away at the end of the test.
func newVethPair(t testing.TB) *vethPair { return testutil.NewVethPair(t) }

// eventually retries cond for up to five seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mapPin returns the pin path of the program's map name.
func mapPin(t *testing.T, p runtime.Program, name string) string {
	t.Helper()
	for _, m := range p.Maps {
		if m.Name == name {
			return m.PinPath
		}
	}
	t.Fatalf("program %d has no map %s (has %v)", p.ID, name, p.Maps)
	return ""
}

// xdpProgID returns the id of the XDP program the kernel runs on the
// interface (0 for none).
func xdpProgID(t *testing.T, ifname, netnsPath string) uint32 {
	t.Helper()
	l := netLink(t, ifname, netnsPath)
	if l.Attrs().Xdp == nil {
		return 0
	}
	return l.Attrs().Xdp.ProgId
}

func netLink(t testing.TB, ifname, netnsPath string) netlink.Link {
	t.Helper()
	h := nlHandle(t, netnsPath)
	defer h.Close()
	l, err := h.LinkByName(ifname)
	if err != nil {
		t.Fatalf("interface %s: %v", ifname, err)
	}
	return l
}

func nlHandle(t testing.TB, netnsPath string) *netlink.Handle {
	t.Helper()
	if netnsPath == "" {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	ns, err := netnsGet(netnsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// tcFilterProgIDs returns the kernel ids of the BPF programs in the
// interface's TC filters for the direction.
func tcFilterProgIDs(t *testing.T, ifname, netnsPath string, dir runtime.Direction) []uint32 {
	t.Helper()
	h := nlHandle(t, netnsPath)
	defer h.Close()
	l, err := h.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	parent := uint32(netlink.HANDLE_MIN_INGRESS)
	if dir == runtime.Egress {
		parent = netlink.HANDLE_MIN_EGRESS
	}
	filters, err := h.FilterList(l, parent)
	if err != nil && !errors.Is(err, unix.EINVAL) {
		t.Fatalf("list filters: %v", err)
	}
	var ids []uint32
	for _, f := range filters {
		if bf, ok := f.(*netlink.BpfFilter); ok {
			ids = append(ids, uint32(bf.Id))
		}
	}
	return ids
}

// kernelHasTCX reports whether the kernel has TCX links (Linux 6.6; the VM's
// 6.1 has not). Tests that use TCX beside other hooks call it to leave out
// only their TCX part on older kernels, saying so in the log; tests of TCX
// alone gate on testutil.RequireKernelFeature instead.
func kernelHasTCX(t testing.TB) bool {
	t.Helper()
	testutil.RequirePrivileged(t)
	if err := testutil.KernelHas(testutil.FeatureTCX); err != nil {
		t.Logf("leaving out TCX: %v", err)
		return false
	}
	return true
}

// tcxProgIDs returns the kernel ids of the programs on the interface's TCX
// hook.
func tcxProgIDs(t *testing.T, ifname, netnsPath string, dir runtime.Direction) []uint32 {
	t.Helper()
	ifindex := netLink(t, ifname, netnsPath).Attrs().Index
	attach := ebpf.AttachTCXIngress
	if dir == runtime.Egress {
		attach = ebpf.AttachTCXEgress
	}
	var ids []uint32
	err := inNetns(netnsPath, func() error {
		res, err := link.QueryPrograms(link.QueryOptions{Target: ifindex, Attach: attach})
		if err != nil {
			return err
		}
		for _, p := range res.Programs {
			ids = append(ids, uint32(p.ID))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("query tcx: %v", err)
	}
	return ids
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries) - 1 // ReadDir's own
}

func netnsGet(path string) (netns.NsHandle, error) { return netns.GetFromPath(path) }

// inNetns runs fn on a thread in the network namespace at path ("" here).
func inNetns(path string, fn func() error) error { return netnsutil.Do(path, fn) }

// assertErr fails the test unless err wraps want and its message contains
// each of the fragments.
func assertErr(t *testing.T, err, want error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one wrapping %q", want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %q does not wrap %q", err, want)
	}
	// The two classes of not found exclude each other.
	for _, class := range []error{runtime.ErrProgramNotFound, runtime.ErrHookNotFound} {
		if class != want && errors.Is(want, runtime.ErrNotFound) && errors.Is(err, class) {
			t.Fatalf("error %q is also of the other class of not found", err)
		}
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("error %q does not mention %q", err, f)
		}
	}
}

// assertOnly checks that the store and the bpffs hold exactly the programs
// ids, all loaded, and that the process has at most fds descriptors open.
func assertOnly(t *testing.T, e *env, m *runtime.Manager, fds int, ids ...runtime.ID) {
	t.Helper()
	records, err := runtime.StoredRecords(m)
	if err != nil {
		t.Fatal(err)
	}
	want := map[runtime.ID]string{}
	var dirs []string
	for _, id := range ids {
		want[id] = "loaded"
		dirs = append(dirs, id.String())
	}
	if diff := cmp.Diff(want, records, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("stored records (-want +got):\n%s", diff)
	}
	slices.Sort(dirs)
	got := e.pinDirs(t)
	slices.Sort(got)
	if diff := cmp.Diff(dirs, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("pin directories (-want +got):\n%s", diff)
	}
	// Fewer is no leak: an object an earlier test dropped may be closed
	// by its finalizer meanwhile.
	if fds >= 0 {
		if now := openFDs(t); now > fds {
			t.Errorf("%d file descriptors open, want at most %d", now, fds)
		}
	}
}

// assertEmpty checks that nothing is recorded or pinned.
func assertEmpty(t *testing.T, e *env, m *runtime.Manager) {
	t.Helper()
	assertOnly(t, e, m, -1)
	if dirs := e.dispatcherDirs(t); len(dirs) != 0 {
		t.Errorf("dispatcher pins left: %v", dirs)
	}
	progs, err := m.List(context.Background(), runtime.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(progs) != 0 {
		t.Errorf("List returned %d programs, want none", len(progs))
	}
}
