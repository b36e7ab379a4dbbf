package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// What the process tests read of a bpfd from outside: its descriptors and
// goroutines, its state store, its bpffs, the kernel objects it reported.

// daemonFDs counts the descriptors the bpfd process has open.
func daemonFDs(t *testing.T, b *bpfd) int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", b.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// fdTargets lists what the bpfd process's descriptors point to, for a
// failure message.
func fdTargets(b *bpfd) []string {
	dir := fmt.Sprintf("/proc/%d/fd", b.cmd.Process.Pid)
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		out = append(out, e.Name()+" -> "+target)
	}
	return out
}

// goroutines reads go_goroutines from bpfd's metrics at addr, on a
// connection it closes (one kept alive would count as bpfd's).
func goroutines(t *testing.T, addr string) int {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("go_goroutines %q: %v", v, err)
			}
			return int(n)
		}
	}
	t.Fatalf("no go_goroutines in the metrics at %s (%v)", addr, sc.Err())
	return 0
}

// storeContents reads bpfd's state store (pkg/runtime's bbolt file, while
// no bpfd holds it): each program record's state by id, and how many ELF
// objects it keeps for chain rebuilds.
func storeContents(t *testing.T, stateDir string) (map[uint64]string, int) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(stateDir, "bpfd.db"), 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("state store: %v", err)
	}
	defer db.Close()
	records := map[uint64]string{}
	objects := 0
	err = db.View(func(tx *bolt.Tx) error {
		progs, objs := tx.Bucket([]byte("programs")), tx.Bucket([]byte("objects"))
		if progs == nil || objs == nil {
			return fmt.Errorf("no programs or objects bucket")
		}
		if err := progs.ForEach(func(k, v []byte) error {
			var r struct {
				ID    uint64 `json:"id"`
				State string `json:"state"`
			}
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("record %x: %w", k, err)
			}
			if r.ID != binary.BigEndian.Uint64(k) {
				return fmt.Errorf("record %x holds id %d", k, r.ID)
			}
			records[r.ID] = r.State
			return nil
		}); err != nil {
			return err
		}
		objects = objs.Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatalf("state store: %v", err)
	}
	return records, objects
}

// pinnedPrograms returns the programs' pin directories in the bpffs, by id.
func pinnedPrograms(t *testing.T, bpffs string) []string {
	t.Helper()
	entries, err := os.ReadDir(bpffs)
	if err != nil {
		t.Fatal(err)
	}
	var pins []string
	for _, e := range entries {
		if _, err := strconv.ParseUint(e.Name(), 10, 64); err == nil { // not maps.debug, dispatchers
			pins = append(pins, e.Name())
		}
	}
	slices.Sort(pins)
	return pins
}

// dispatchers returns the hooks whose dispatcher is pinned.
func dispatchers(t *testing.T, bpffs string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(bpffs, "dispatchers"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// pinnedDispatchers returns the kernel ids of the dispatcher programs
// pinned for the XDP or TC hook named hook ("xdp/ifindex=4/netns=…"): each
// generation pins in <bpffs>/dispatchers/<hook with / as _>/<mode>-<id>.
func pinnedDispatchers(t *testing.T, bpffs, hook string) []uint32 {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(bpffs, "dispatchers", strings.ReplaceAll(hook, "/", "_")))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []uint32
	for _, e := range entries {
		_, id, ok := strings.Cut(e.Name(), "-")
		if !ok || !e.IsDir() {
			continue // the hook's link
		}
		n, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			t.Fatalf("dispatcher pin %s of hook %s: not <mode>-<id>", e.Name(), hook)
		}
		out = append(out, uint32(n))
	}
	return out
}

// kernelLeft returns which of the kernel programs, links and maps (by
// kind: "program", "link", "map") still exist, or "" when none does.
func kernelLeft(objects map[string]map[uint32]bool) string {
	var left []string
	for _, kind := range []string{"program", "link", "map"} {
		for id := range objects[kind] {
			if kernelHasObject(kind, id) {
				left = append(left, fmt.Sprintf("%s %d", kind, id))
			}
		}
	}
	slices.Sort(left)
	return strings.Join(left, ", ")
}

func kernelHasObject(kind string, id uint32) bool {
	switch kind {
	case "program":
		return kernelHas(id)
	case "map":
		m, err := ebpf.NewMapFromID(ebpf.MapID(id))
		if err != nil {
			return false
		}
		m.Close()
		return true
	}
	l, err := link.NewFromID(link.ID(id))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// xdpPrograms returns the XDP program the veth's peer runs, if any.
func xdpPrograms(t *testing.T, v *testutil.VethPair) []uint32 {
	t.Helper()
	var out []uint32
	withPeer(t, v, func(h *netlink.Handle, l netlink.Link) {
		if x := l.Attrs().Xdp; x != nil && x.ProgId != 0 {
			out = append(out, x.ProgId)
		}
	})
	return out
}

// tcIngressPrograms returns the programs on the ingress of the veth's
// peer: its cls_bpf filters' and, where the kernel has TCX, the TCX hook's
// (a TC chain attaches through either).
func tcIngressPrograms(t *testing.T, v *testutil.VethPair) []uint32 {
	t.Helper()
	var out []uint32
	withPeer(t, v, func(h *netlink.Handle, l netlink.Link) {
		filters, err := h.FilterList(l, netlink.HANDLE_MIN_INGRESS)
		if err != nil && !strings.Contains(err.Error(), "invalid argument") { // no clsact qdisc
			t.Fatalf("filters of %s: %v", v.Peer, err)
		}
		for _, f := range filters {
			if bf, ok := f.(*netlink.BpfFilter); ok {
				out = append(out, uint32(bf.Id))
			}
		}
	})
	if testutil.KernelHas(testutil.FeatureTCX) == nil {
		out = append(out, tcxPrograms(t, v.Peer, ebpf.AttachTCXIngress, v.Netns)...)
	}
	slices.Sort(out)
	return out
}

// tcxPrograms returns the programs of the TCX hook attach of interface
// ifname in the network namespace at netnsPath ("": this one), sorted;
// none on kernels without TCX.
func tcxPrograms(t *testing.T, ifname string, attach ebpf.AttachType, netnsPath string) []uint32 {
	t.Helper()
	if testutil.KernelHas(testutil.FeatureTCX) != nil {
		return nil
	}
	var out []uint32
	inNetns(t, netnsPath, func() {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			t.Fatalf("interface %s: %v", ifname, err)
		}
		res, err := link.QueryPrograms(link.QueryOptions{Target: l.Attrs().Index, Attach: attach})
		if err != nil {
			t.Fatalf("TCX programs of %s: %v", ifname, err)
		}
		for _, p := range res.Programs {
			out = append(out, uint32(p.ID))
		}
	})
	slices.Sort(out)
	return out
}

// withPeer calls fn with a netlink handle in the peer's namespace and the
// peer's link.
func withPeer(t *testing.T, v *testutil.VethPair, fn func(*netlink.Handle, netlink.Link)) {
	t.Helper()
	ns, err := netns.GetFromPath(v.Netns)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("netlink in %s: %v", v.Netns, err)
	}
	defer h.Close()
	l, err := h.LinkByName(v.Peer)
	if err != nil {
		t.Fatal(err)
	}
	fn(h, l)
}

// inNetns runs fn on a thread in the network namespace at path ("": this
// one).
func inNetns(t *testing.T, path string, fn func()) {
	t.Helper()
	if path == "" {
		fn()
		return
	}
	// A thread that cannot return to the test's namespace stays locked and
	// ends with its goroutine.
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			t.Errorf("return to the test's network namespace: %v", err)
			return
		}
		runtime.UnlockOSThread()
	}()
	fn()
}
