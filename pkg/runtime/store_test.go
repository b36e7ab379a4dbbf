package runtime

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// TestRecordRoundTrip stores and reads back a record of every kind.
func TestRecordRoundTrip(t *testing.T) {
	specs := map[progtype.Kind]AttachSpec{
		progtype.XDP:        XDPAttach{Interface: "eth0", Netns: "/run/netns/a", Mode: XDPModeNative, Priority: 3, ProceedOn: []string{"drop", "pass"}},
		progtype.TC:         TCAttach{Interface: "eth0", Direction: Egress, Priority: 10, ProceedOn: []string{"ok"}},
		progtype.TCX:        TCXAttach{Interface: "eth0", Direction: Ingress, Priority: 500},
		progtype.Tracepoint: TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"},
		progtype.Kprobe:     KprobeAttach{Function: "do_unlinkat", Offset: 4},
		progtype.Kretprobe:  KprobeAttach{Function: "do_unlinkat"},
		progtype.Uprobe:     UprobeAttach{Target: "/bin/sh", Function: "main", Offset: 8, PID: 12},
		progtype.Uretprobe:  UprobeAttach{Target: "/bin/sh", Offset: 0x1000},
		progtype.Fentry:     FentryAttach{Function: "do_unlinkat"},
		progtype.Fexit:      FentryAttach{Function: "do_unlinkat"},
		progtype.Cgroup:     CgroupAttach{Path: "/sys/fs/cgroup", AttachType: CgroupSockOps},

		progtype.RawTracepoint: RawTracepointAttach{Tracepoint: "sched_switch"},
		progtype.TPBTF:         RawTracepointAttach{Tracepoint: "sched_wakeup"},
	}
	s, err := openStore(t.TempDir(), "/run/bpfd/fs")
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	var want []*record
	for _, k := range progtype.All() {
		r := &record{
			State: stateLoaded, Name: "p_" + string(k), Kind: k, Object: "o.bpf.o", Attach: specs[k], Hook: "h",
			Metadata: map[string]string{"app": "x"}, Globals: map[string][]byte{"g": {1, 2}},
			Provenance: Provenance{Reference: "r", Digest: "sha256:00", AllowedKinds: []progtype.Kind{k}},
			LoadedBy:   Requester{UID: 1, GID: 2, PID: 3}, LoadedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			Owner:     Owner{UID: 1, Config: "cfg", Namespace: "ns", MapReaderNamespaces: []string{"a", "b"}},
			ProgramID: 7, LinkID: 8, Maps: []mapRecord{{Name: ".bss", ID: 9}},
		}
		if k == progtype.XDP || k == progtype.TC {
			r.Chain = &chainRecord{Mode: dispatcher.ModeLinked, Ifindex: 2, Object: "00ff"}
		}
		want = append(want, r)
	}
	if err := s.create(want, func(*record) {}, map[string][]byte{"00ff": {0x7f, 'E', 'L', 'F'}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.all()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(record{})); diff != "" {
		t.Fatalf("records (-want +got):\n%s", diff)
	}
	for i, r := range got {
		if r.ID != ID(i+1) {
			t.Errorf("record %d has id %d, want ids from 1 in order", i, r.ID)
		}
	}
	if err := s.remove(got[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.get(got[0].ID); !errors.Is(err, ErrProgramNotFound) {
		t.Fatalf("get removed record: %v, want ErrProgramNotFound", err)
	}
}

// TestStoreObjects keeps a chain's object while a record names it.
func TestStoreObjects(t *testing.T) {
	s, err := openStore(t.TempDir(), "/run/bpfd/fs")
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	elf := []byte{0x7f, 'E', 'L', 'F'}
	rec := func() *record {
		return &record{State: stateLoaded, Kind: progtype.XDP, Attach: XDPAttach{Interface: "eth0"},
			Chain: &chainRecord{Mode: dispatcher.ModeLinked, Ifindex: 2, Object: "abc"}}
	}
	a, b := rec(), rec()
	if err := s.create([]*record{a, b}, func(*record) {}, map[string][]byte{"abc": elf}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		remove ID
		want   error
	}{{a.ID, nil}, {b.ID, errNoObject}}
	for _, st := range steps {
		if err := s.remove(st.remove); err != nil {
			t.Fatal(err)
		}
		got, err := s.object("abc")
		if !errors.Is(err, st.want) || (err == nil && !cmp.Equal(got, elf)) {
			t.Fatalf("object after removing record %d: %v, %v; want error %v", st.remove, got, err, st.want)
		}
	}
}

// TestStoreIDsNeverReused checks ids keep growing after records go and the
// store is reopened.
func TestStoreIDsNeverReused(t *testing.T) {
	dir := t.TempDir()
	s, err := openStore(dir, "/b")
	if err != nil {
		t.Fatal(err)
	}
	r := &record{Kind: progtype.Tracepoint, Attach: TracepointAttach{Tracepoint: "a/b"}}
	if err := s.create([]*record{r}, func(*record) {}, nil); err != nil {
		t.Fatal(err)
	}
	s.remove(r.ID)
	s.close()
	if s, err = openStore(dir, "/b"); err != nil {
		t.Fatal(err)
	}
	defer s.close()
	r2 := &record{Kind: progtype.Tracepoint, Attach: TracepointAttach{Tracepoint: "a/b"}}
	if err := s.create([]*record{r2}, func(*record) {}, nil); err != nil {
		t.Fatal(err)
	}
	if r2.ID <= r.ID {
		t.Fatalf("new id %d after %d was used", r2.ID, r.ID)
	}
}

func TestStoreRefusesOtherBPFFS(t *testing.T) {
	dir := t.TempDir()
	s, err := openStore(dir, "/run/a")
	if err != nil {
		t.Fatal(err)
	}
	s.close()
	_, err = openStore(dir, "/run/b")
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("openStore with another bpffs: %v, want ErrConflict", err)
	}
	if _, err := openStore(filepath.Join(dir, "bpfd.db"), "/run/a"); err == nil {
		t.Fatal("openStore on a file as state dir succeeded")
	}
}

// TestStoreAfterLostKernel: a store is synced once per boot, so under a
// kernel other than the one that wrote it (a power loss, a kernel crash)
// it may have lost writes. Open checks it then: an intact one is kept; a
// damaged one is moved aside and replaced when the bpffs holds no pins of
// bpfd's (the kernel took every program it described), with ids above any
// it gave out, and refused when pins depend on it.
func TestStoreAfterLostKernel(t *testing.T) {
	cases := map[string]struct {
		damage   func(t *testing.T, path string)
		pin      string // made under the bpffs before the Open
		replaced bool
		wantErr  string
	}{
		"intact": {},
		"meta pages zeroed": {
			damage:   func(t *testing.T, path string) { overwrite(t, path, 0, 2*4096, 0) },
			replaced: true,
		},
		"data pages garbage": {
			damage:   func(t *testing.T, path string) { overwrite(t, path, 2*4096, -1, 0xff) },
			replaced: true,
		},
		"damaged with a program pinned": {
			damage:  func(t *testing.T, path string) { overwrite(t, path, 0, 2*4096, 0) },
			pin:     "7",
			wantErr: "not replaced",
		},
		"damaged with a chain pinned": {
			damage:  func(t *testing.T, path string) { overwrite(t, path, 2*4096, -1, 0xff) },
			pin:     "dispatchers/xdp_ifindex=2",
			wantErr: "not replaced",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir, bpffs := t.TempDir(), t.TempDir()
			a := closedStoreOfOne(t, dir, bpffs)
			path := filepath.Join(dir, storeFile)
			if tc.damage != nil {
				tc.damage(t, path)
			}
			if tc.pin != "" {
				if err := os.MkdirAll(filepath.Join(bpffs, tc.pin), 0o700); err != nil {
					t.Fatal(err)
				}
			}

			setBootID(t, "boot-2")
			s, err := openStore(dir, bpffs)
			if tc.wantErr != "" {
				pinned := filepath.Join(bpffs, strings.SplitN(tc.pin, "/", 2)[0])
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), pinned) {
					t.Fatalf("openStore = %v, want an error with %q naming %s", err, tc.wantErr, pinned)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			if got := s.replaced != ""; got != tc.replaced {
				t.Fatalf("replaced %q, want replaced %v", s.replaced, tc.replaced)
			}
			got, err := s.all()
			if err != nil {
				t.Fatal(err)
			}
			if !tc.replaced {
				if len(got) != 1 || got[0].ID != a.ID {
					t.Fatalf("records of the intact store: %+v", got)
				}
				return
			}
			if len(got) != 0 {
				t.Fatalf("records of the fresh store: %+v", got)
			}
			if _, err := os.Stat(s.replaced); err != nil {
				t.Errorf("the damaged store was not kept aside: %v", err)
			}
			next := []*record{{State: stateLoaded, Name: "b", Kind: progtype.Tracepoint, Attach: TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}}}
			if err := s.create(next, func(*record) {}, nil); err != nil {
				t.Fatal(err)
			}
			if next[0].ID <= a.ID || next[0].ID < ID(time.Now().Add(-time.Hour).Unix()) {
				t.Errorf("the fresh store gave out id %d, want one above any the lost store can have given out", next[0].ID)
			}
		})
	}
}

// TestStoreSameBootDamageIsAnError: under the kernel that wrote it, a store is
// opened without the whole-file check, and damage is an error, not a
// reason to replace it.
func TestStoreSameBootDamageIsAnError(t *testing.T) {
	dir, bpffs := t.TempDir(), t.TempDir()
	setBootID(t, "boot-1")
	s, err := openStore(dir, bpffs)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, storeFile)
	overwrite(t, path, 0, 2*4096, 0)
	if err := os.MkdirAll(filepath.Join(bpffs, "3"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := openStore(dir, bpffs); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("openStore of a damaged store with pins = %v, want an error naming %s", err, path)
	}
}

func setBootID(t *testing.T, id string) {
	t.Helper()
	old := bootID
	bootID = func() (string, error) { return id, nil }
	t.Cleanup(func() { bootID = old })
}

// overwrite fills length bytes of the file at path from offset with b;
// length -1 to the end.
func overwrite(t *testing.T, path string, offset, length int64, b byte) {
	t.Helper()
	if length < 0 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		length = fi.Size() - offset
	}
	if length <= 0 {
		t.Fatalf("%s has nothing to overwrite at %d", path, offset)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{b}, int(length)), offset); err != nil {
		t.Fatal(err)
	}
}

// closedStoreOfOne makes a store in dir, under boot "boot-1", holding one
// loaded tracepoint program named "a", closes it and returns its record.
func closedStoreOfOne(t *testing.T, dir, bpffs string) *record {
	t.Helper()
	setBootID(t, "boot-1")
	s, err := openStore(dir, bpffs)
	if err != nil {
		t.Fatal(err)
	}
	rs := []*record{{State: stateLoaded, Name: "a", Kind: progtype.Tracepoint, Attach: TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}}}
	if err := s.create(rs, func(*record) {}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	return rs[0]
}

// TestStoreReopenedUnderTheSameBoot: an Open under the kernel the store was
// last opened under writes nothing (and so has nothing to sync): the first
// Open of that boot synced the store, and what was committed since lives
// in the kernel's page cache. Under another kernel it records the new boot.
func TestStoreReopenedUnderTheSameBoot(t *testing.T) {
	dir, bpffs := t.TempDir(), t.TempDir()
	path := filepath.Join(dir, storeFile)
	a := closedStoreOfOne(t, dir, bpffs)
	reopen := func() []byte {
		t.Helper()
		before, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s, err := openStore(dir, bpffs)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.get(a.ID); err != nil || got.Name != "a" {
			t.Fatalf("record after reopening: %+v, %v", got, err)
		}
		if err := s.close(); err != nil {
			t.Fatal(err)
		}
		return before
	}
	before := reopen()
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("reopening under the same boot changed the store file")
	}
	setBootID(t, "boot-2")
	before = reopen()
	if after, _ := os.ReadFile(path); bytes.Equal(before, after) {
		t.Error("reopening under another boot did not record it")
	}
}
