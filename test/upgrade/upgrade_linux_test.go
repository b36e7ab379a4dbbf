package upgrade

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// udp is the counters' key for UDP packets.
const udp = uint32(17)

// TestUpgradeFromPreviousRelease runs the previous release's bpfd and
// bpfctl, loads with them two XDP programs chained on a veth, a TCX program
// on the same veth and a tracepoint program, then replaces that bpfd with
// this tree's on the same state dir, bpffs, cache and socket while a stream
// of packets flows into the veth and the test opens files all the while.
// The new bpfd migrates the store and adopts every program without
// reloading it: both versions of bpfctl list the same ids, kernel
// programs, links, maps, pins and hook positions, and every packet sent
// was counted by each packet program, across the stop, the time without
// any bpfd and the start.
//
// Then the other way: the previous release's bpfd refuses the migrated
// store and changes nothing, and this bpfd refuses a store stamped with a
// schema version newer than its own, changing nothing either. Started
// again, now with revocation: unload, it adopts the programs once more,
// unloading none of them although v0.1.0's cache holds no signatures for
// them, and then they are unloaded.
func TestUpgradeFromPreviousRelease(t *testing.T) {
	testutil.RequirePrivileged(t)
	testutil.RequireKernelFeature(t, testutil.FeatureTCX)
	bins := buildVersions(t)
	n := newNode(t)
	xdpRef := n.image(t, "xdp", "xdp_counter.bpf.o")
	tcRef := n.image(t, "tc", "tc_counter.bpf.o")
	tpRef := n.image(t, "tracepoint", "tracepoint_counter.bpf.o")
	v := testutil.NewVethPair(t)

	old := n.start(t, bins.old)
	load := func(args ...string) {
		t.Helper()
		n.bpfctl(t, bins.old, append([]string{"load", "image"}, append(args, "-m", "test=upgrade")...)...)
	}
	load(xdpRef, "-p", "xdp_counter:xdp", "-i", v.Host, "--priority", "10")
	load(xdpRef, "-p", "xdp_counter:xdp", "-i", v.Host, "--priority", "20")
	load(tcRef, "-p", "tcx_counter:tcx", "-i", v.Host, "--direction", "ingress")
	load(tpRef, "-p", "tracepoint_counter:tracepoint", "--tracepoint", "syscalls/sys_enter_openat")
	before := n.list(t, bins.old)
	if len(before) != 4 {
		t.Fatalf("the previous release lists %d programs, want 4: %+v", len(before), before)
	}
	var packetCounters []string
	var tracepointCounter string
	for _, p := range before {
		switch p.Type {
		case "xdp":
			packetCounters = append(packetCounters, mapPin(t, p, "xdp_stats"))
		case "tcx":
			packetCounters = append(packetCounters, mapPin(t, p, "tc_stats"))
		case "tracepoint":
			tracepointCounter = mapPin(t, p, "openat_calls")
		}
	}
	if len(packetCounters) != 3 || tracepointCounter == "" {
		t.Fatalf("listed programs %+v: want two xdp, one tcx and one tracepoint program", before)
	}
	pid := uint32(os.Getpid())
	counts := func() []uint64 {
		var c []uint64
		for _, pin := range packetCounters {
			c = append(c, testutil.ReadU64(t, pin, udp))
		}
		return c
	}
	start := counts()
	opensBefore := testutil.ReadU64(t, tracepointCounter, pid)

	// The version change, under traffic.
	traffic := v.StartUDPFromPeer(t, time.Millisecond)
	opener := startOpening(t)
	time.Sleep(100 * time.Millisecond)
	old.stop(t, syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond) // no bpfd at all: the programs run on their own
	cur := n.start(t, bins.cur)
	time.Sleep(100 * time.Millisecond)
	sent := traffic.Stop(t)
	opened := opener.stop(t)

	if !strings.Contains(cur.log(), "migrated the state store") {
		t.Errorf("the new bpfd did not log the store's migration:\n%s", cur.log())
	}
	after := n.list(t, bins.cur)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("programs after the upgrade, as this bpfctl lists them (-previous release +this one):\n%s", diff)
	}
	if diff := cmp.Diff(before, n.list(t, bins.old)); diff != "" {
		t.Errorf("programs after the upgrade, as the previous bpfctl lists them (-before +after):\n%s", diff)
	}
	// The runtime's reconciliation says "removed a …", "removed pins …" or
	// "rebuilt …" when it changes what it adopts; the cache's collection
	// ("cache: collected removed=0") is not about programs.
	for _, line := range strings.Split(cur.log(), "\n") {
		if strings.Contains(line, "msg=\"removed") || strings.Contains(line, "rebuilt") || strings.Contains(line, "unloaded") {
			t.Errorf("the new bpfd removed, rebuilt or unloaded something while adopting: %s", line)
		}
	}
	waitCounts(t, counts, start, sent)
	t.Logf("%d packets sent across the upgrade, every one counted by each of %d programs; %d files opened", sent, len(packetCounters), opened)
	if got := testutil.ReadU64(t, tracepointCounter, pid) - opensBefore; got < uint64(opened) {
		t.Errorf("the tracepoint program counted %d openat calls of this process across the upgrade, it made at least %d", got, opened)
	}

	storeFile := filepath.Join(n.state, "bpfd.db")
	cur.stop(t, syscall.SIGTERM)

	t.Run("the previous release refuses the migrated store and changes nothing", func(t *testing.T) {
		schema := currentSchema(t, storeFile)
		state := snapshot(t, n)
		b, _ := n.launch(t, bins.old)
		if code := b.wait(t); code == 0 {
			t.Fatalf("the previous bpfd started over a newer store:\n%s", b.log())
		}
		if want := fmt.Sprintf("schema version %q", strconv.Itoa(schema)); !strings.Contains(b.log(), want) {
			t.Errorf("the previous bpfd's refusal does not say %s:\n%s", want, b.log())
		}
		state.check(t, n)
		checkCounting(t, v, counts)
	})

	t.Run("this bpfd refuses a newer store and changes nothing", func(t *testing.T) {
		was := currentSchema(t, storeFile)
		stampSchema(t, storeFile, strconv.Itoa(was+1))
		defer stampSchema(t, storeFile, strconv.Itoa(was))
		state := snapshot(t, n)
		b, _ := n.launch(t, bins.cur)
		if code := b.wait(t); code != 1 {
			t.Fatalf("bpfd over a store of schema version %d: exit code %d, want 1:\n%s", was+1, code, b.log())
		}
		lines := strings.Split(strings.TrimSpace(b.log()), "\n")
		last := lines[len(lines)-1]
		for _, want := range []string{"bpfd: state store " + storeFile, fmt.Sprintf("schema version %d", was+1), "newer bpfd"} {
			if !strings.Contains(last, want) {
				t.Errorf("last line %q does not say %q", last, want)
			}
		}
		state.check(t, n)
		checkCounting(t, v, counts)
	})

	// Started again under revocation: unload, over the cache v0.1.0 left,
	// which holds no signatures by origin: every adopted program is
	// reported not judged (no-signatures) and none is unloaded, for
	// missing evidence is no denial.
	if err := os.WriteFile(n.config, []byte("apiVersion: bpfd.io/v1alpha1\nkind: DaemonConfig\nrevocation: unload\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cur = n.start(t, bins.cur)
	// bpfd serves first and judges the programs it adopted after.
	cur.waitLog(t, "programs adopted at start judged")
	if diff := cmp.Diff(before, n.list(t, bins.cur)); diff != "" {
		t.Errorf("programs after the refusals, under revocation: unload (-before +after):\n%s", diff)
	}
	notJudged := 0
	for _, line := range strings.Split(cur.log(), "\n") {
		if strings.Contains(line, "unloaded") || strings.Contains(line, "msg=\"removed") || strings.Contains(line, "rebuilt") {
			t.Errorf("bpfd under revocation: unload removed, rebuilt or unloaded something while adopting: %s", line)
		}
		if strings.Contains(line, "program not judged") && strings.Contains(line, "reason=no-signatures") {
			notJudged++
		}
	}
	if notJudged != len(before) {
		t.Errorf("bpfd under revocation: unload reported %d programs not judged for want of signatures, want %d:\n%s", notJudged, len(before), cur.log())
	}
	checkCounting(t, v, counts)
	ids := []string{"unload"}
	for _, p := range before {
		ids = append(ids, strconv.FormatUint(p.ID, 10))
	}
	n.bpfctl(t, bins.cur, ids...)
	if left := n.list(t, bins.cur); len(left) != 0 {
		t.Errorf("programs left after unloading all: %+v", left)
	}
	cur.stop(t, syscall.SIGTERM)
}

// opener opens a file in a loop, counting, until stop.
type opener struct {
	stopc chan struct{}
	done  chan int
}

// startOpening opens /proc/self/stat every millisecond: openat calls of
// this process that the tracepoint program counts.
func startOpening(t *testing.T) *opener {
	o := &opener{stopc: make(chan struct{}), done: make(chan int, 1)}
	go func() {
		n := 0
		for {
			select {
			case <-o.stopc:
				o.done <- n
				return
			case <-time.After(time.Millisecond):
			}
			if f, err := os.Open("/proc/self/stat"); err == nil {
				f.Close()
				n++
			}
		}
	}()
	return o
}

func (o *opener) stop(t *testing.T) int {
	close(o.stopc)
	return <-o.done
}

// waitCounts waits until each counter counted sent packets since start,
// and fails unless each counted exactly that many: none lost, none extra.
func waitCounts(t *testing.T, counts func() []uint64, start []uint64, sent int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := counts()
		done := true
		for i := range got {
			if got[i]-start[i] < uint64(sent) {
				done = false
			}
		}
		if done || time.Now().After(deadline) {
			for i := range got {
				if got[i]-start[i] != uint64(sent) {
					t.Errorf("counter %d counted %d packets, %d were sent", i, got[i]-start[i], sent)
				}
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkCounting sends packets and checks that every packet program counts
// each one.
func checkCounting(t *testing.T, v *testutil.VethPair, counts func() []uint64) {
	t.Helper()
	start := counts()
	v.SendUDPFromPeer(t, 10)
	waitCounts(t, counts, start, 10)
}

// nodeState is the node's store file and bpffs, to check that nothing
// changed.
type nodeState struct {
	store [32]byte
	pins  map[string]string
}

func snapshot(t *testing.T, n *node) nodeState {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.state, "bpfd.db"))
	if err != nil {
		t.Fatal(err)
	}
	return nodeState{store: sha256.Sum256(b), pins: bpffsTree(t, n.bpffs)}
}

func (s nodeState) check(t *testing.T, n *node) {
	t.Helper()
	now := snapshot(t, n)
	if now.store != s.store {
		t.Error("the refused store file changed")
	}
	if diff := cmp.Diff(s.pins, now.pins); diff != "" {
		t.Errorf("bpffs after the refusal (-before +after):\n%s", diff)
	}
}

// bpffsTree lists every path under dir with its mode and inode: a pin
// replaced by another has another inode.
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

// currentSchema returns the schema version of the store at path.
func currentSchema(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	err = db.View(func(tx *bolt.Tx) error {
		var err error
		v, err = strconv.Atoi(string(tx.Bucket([]byte("meta")).Get([]byte("schema"))))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// stampSchema sets the schema version of the store at path.
func stampSchema(t *testing.T, path, version string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte(version))
	})
	if err != nil {
		t.Fatal(err)
	}
}
