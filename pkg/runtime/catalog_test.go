package runtime

import (
	"errors"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// TestCatalogFollowsStore writes records through the catalog and checks
// after each step that what it holds in memory is what the store holds, that
// a reopened catalog reads the same, and that the copies it hands out do not
// change it.
func TestCatalogFollowsStore(t *testing.T) {
	dir := t.TempDir()
	c, err := openCatalog(dir, "/run/bpfd/fs")
	if err != nil {
		t.Fatal(err)
	}
	same := func(step string) {
		t.Helper()
		mem, _ := c.all()
		disk, err := c.store.all()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(disk, mem, cmp.AllowUnexported(record{})); diff != "" {
			t.Fatalf("%s: memory differs from the store (-store +memory):\n%s", step, diff)
		}
	}
	newRecord := func(name string, k progtype.Kind, spec AttachSpec) *record {
		r := &record{
			State: stateLoading, Name: name, Kind: k, Object: "o.bpf.o", Attach: spec, Hook: "h/" + name,
			Metadata: map[string]string{"app": name}, LoadedAt: time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC),
			LoadedBy: Requester{UID: 7},
		}
		if k == progtype.XDP {
			r.Chain = &chainRecord{Mode: dispatcher.ModeLinked, Ifindex: 2, Object: "00ff"}
		}
		return r
	}
	// The attach specs as given, before the decoder fills in nothing: an
	// empty proceed-on list, no owner (read back as the loader's).
	rs := []*record{
		newRecord("a", progtype.XDP, XDPAttach{Interface: "eth0", ProceedOn: []string{}}),
		newRecord("b", progtype.Tracepoint, TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}),
		newRecord("c", progtype.Tracepoint, TracepointAttach{Tracepoint: "syscalls/sys_enter_close"}),
	}
	if err := c.create(rs, func(r *record) { r.MapOwnerID = 1 }, map[string][]byte{"00ff": {1}}); err != nil {
		t.Fatal(err)
	}
	same("create")

	rs[0].State, rs[0].ProgramID, rs[0].Chain.Mode = stateLoaded, 40, dispatcher.ModeFreplace
	rs[1].State = stateLoaded
	if err := c.put(rs[0], rs[1]); err != nil {
		t.Fatal(err)
	}
	same("put")
	if got := c.loaded(); len(got) != 2 || got[0].ID != rs[0].ID || got[1].ID != rs[1].ID {
		t.Fatalf("loaded records %v, want ids %d, %d", got, rs[0].ID, rs[1].ID)
	}

	// A caller changing its copy changes neither memory nor store.
	r, err := c.get(rs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	r.State, r.Chain.Mode = stateUnloading, dispatcher.ModeLinked
	if again, _ := c.get(rs[0].ID); again.State != stateLoaded || again.Chain.Mode != dispatcher.ModeFreplace {
		t.Fatalf("changing a copy changed the catalog: state %s, chain mode %s", again.State, again.Chain.Mode)
	}
	same("copy changed")

	if err := c.remove(rs[2].ID); err != nil {
		t.Fatal(err)
	}
	same("remove")
	if _, err := c.get(rs[2].ID); !errors.Is(err, ErrProgramNotFound) {
		t.Fatalf("get removed record: %v, want ErrProgramNotFound", err)
	}
	if c.isLoaded(rs[2].ID) || !c.isLoaded(rs[1].ID) {
		t.Fatal("isLoaded disagrees with the records")
	}

	// A failed write leaves memory as the store: nothing.
	c.close()
	if err := c.put(rs[2]); err == nil {
		t.Fatal("put on a closed store succeeded")
	}
	if _, err := c.get(rs[2].ID); !errors.Is(err, ErrProgramNotFound) {
		t.Fatalf("a record whose write failed is in memory: %v", err)
	}

	reopened, err := openCatalog(dir, "/run/bpfd/fs")
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.close()
	was, _ := c.all()
	now, _ := reopened.all()
	if diff := cmp.Diff(was, now, cmp.AllowUnexported(record{})); diff != "" {
		t.Fatalf("reopened catalog (-before +after):\n%s", diff)
	}
}

// TestCatalogShares: records of one artifact with the same labels share
// their strings and their metadata map in memory, across a reopen too; a
// record's labels changed, or the last record of a set removed, let go of
// the shared map.
func TestCatalogShares(t *testing.T) {
	dir := t.TempDir()
	c, err := openCatalog(dir, "/run/bpfd/fs")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { c.close() }()
	newRecord := func(tp string, labels map[string]string) *record {
		return &record{State: stateLoaded, Name: "tracepoint_counter", Kind: progtype.Tracepoint, Object: "tp.bpf.o",
			Attach: TracepointAttach{Tracepoint: tp}, Hook: "tracepoint/" + tp, Metadata: labels,
			Provenance: Provenance{Reference: "oci:/images/tp@sha256:0123", Digest: "sha256:0123", Rule: "images"}}
	}
	rs := []*record{
		newRecord("syscalls/sys_enter_getpid", map[string]string{"app": "x", "team": "y"}),
		newRecord("syscalls/sys_enter_getppid", map[string]string{"team": "y", "app": "x"}),
		newRecord("syscalls/sys_enter_gettid", map[string]string{"app": "z"}),
	}
	if err := c.create(rs, func(*record) {}, nil); err != nil {
		t.Fatal(err)
	}
	check := func(step string, wantSets int) {
		t.Helper()
		a, b := c.recs[rs[0].ID], c.recs[rs[1].ID]
		if unsafe.StringData(a.Provenance.Reference) != unsafe.StringData(b.Provenance.Reference) || unsafe.StringData(a.Name) != unsafe.StringData(b.Name) {
			t.Errorf("%s: two records of one artifact hold strings of their own", step)
		}
		if reflect.ValueOf(a.Metadata).UnsafePointer() != reflect.ValueOf(b.Metadata).UnsafePointer() {
			t.Errorf("%s: two records with the same labels hold maps of their own", step)
		}
		if len(c.labels.m) != wantSets {
			t.Errorf("%s: %d label sets held, want %d", step, len(c.labels.m), wantSets)
		}
	}
	check("created", 2)
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	if c, err = openCatalog(dir, "/run/bpfd/fs"); err != nil {
		t.Fatal(err)
	}
	check("reopened", 2)
	if _, err := c.update([]ID{rs[2].ID}, func(r *record) error { r.Metadata = map[string]string{"app": "x", "team": "y"}; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := c.labels.m[labelsKey(map[string]string{"app": "x", "team": "y"})]; got == nil || got.users != 3 || len(c.labels.m) != 1 {
		t.Errorf("after relabelling: label sets %v, want one, used by 3 records", c.labels.m)
	}
	if err := c.remove(rs[0].ID, rs[1].ID, rs[2].ID); err != nil {
		t.Fatal(err)
	}
	if len(c.labels.m) != 0 {
		t.Errorf("label sets held after every record was removed: %v", c.labels.m)
	}
}
