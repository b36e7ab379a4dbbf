package runtime

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
)

// storeContents is everything a store holds, bucket by bucket, as text.
type storeContents map[string]map[string]string

// writeStore writes a store in dir holding exactly c (keys of the
// programs bucket are ids in decimal), as a bpfd of that version would
// have left it.
func writeStore(t *testing.T, dir string, c storeContents) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, storeFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		for bucket, kv := range c {
			b, err := tx.CreateBucket([]byte(bucket))
			if err != nil {
				return err
			}
			for k, v := range kv {
				key := []byte(k)
				if bucket == string(bucketPrograms) {
					id, err := strconv.ParseUint(k, 10, 64)
					if err != nil {
						return err
					}
					key = idKey(ID(id))
				}
				if err := b.Put(key, []byte(v)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// readStore returns what the store in dir holds, records as compact JSON
// with sorted keys.
func readStore(t *testing.T, dir string) storeContents {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, storeFile), 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := storeContents{}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			kv := map[string]string{}
			c[string(name)] = kv
			return b.ForEach(func(k, v []byte) error {
				if string(name) == string(bucketPrograms) {
					kv[strconv.FormatUint(uint64(ID(beUint64(k))), 10)] = normalJSON(t, v)
					return nil
				}
				kv[string(k)] = string(v)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func beUint64(b []byte) uint64 {
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	return n
}

func normalJSON(t *testing.T, v []byte) string {
	t.Helper()
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		return string(v) // not JSON: compared as it is
	}
	out, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// Records as bpfd v0.1.0 (schema version 1) wrote them: no owner.
const (
	v1Tracepoint = `{"id":1,"state":"loaded","name":"tracepoint_counter","kind":"tracepoint","object":"tracepoint_counter.bpf.o",` +
		`"hook":"tracepoint/syscalls/sys_enter_openat","metadata":{"app":"x"},"provenance":{"reference":"oci:/srv/tp:v1","digest":"sha256:00"},` +
		`"loadedBy":{"uid":1000,"gid":100,"pid":42},"loadedAt":"2026-01-02T03:04:05Z","programId":17,"linkId":18,` +
		`"maps":[{"name":"openat_calls","id":19}],"attach":{"tracepoint":"syscalls/sys_enter_openat"}}`
	v1XDP = `{"id":2,"state":"loaded","name":"xdp_counter","kind":"xdp","object":"xdp_counter.bpf.o","hook":"xdp/ifindex=4/netns=4026531840",` +
		`"provenance":{"reference":"oci:/srv/xdp:v1"},"loadedBy":{"uid":0,"gid":0,"pid":7},"loadedAt":"2026-01-02T03:04:05Z",` +
		`"maps":[{"name":"xdp_stats","id":21}],"chain":{"mode":"linked","ifindex":4,"object":"00ff"},` +
		`"attach":{"interface":"eth0","priority":50,"proceedOn":["pass","dispatcher_return"]}}`
	v1Loading = `{"id":3,"state":"loading","name":"tcx_counter","kind":"tcx","object":"tc_counter.bpf.o","hook":"tcx/ingress/ifindex=4/netns=4026531840",` +
		`"provenance":{"reference":"oci:/srv/tc:v1"},"loadedBy":{"uid":65534,"gid":65534,"pid":9},"loadedAt":"2026-01-02T03:04:05Z",` +
		`"attach":{"interface":"eth0","direction":"ingress","priority":1000}}`
)

// withField returns the JSON object rec with field set to value.
func withField(t *testing.T, rec, field, value string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(rec), &m); err != nil {
		t.Fatal(err)
	}
	m[field] = json.RawMessage(value)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return normalJSON(t, out)
}

// TestMigrations opens stores of every older schema version (and of this
// one): each is migrated to schemaVersion, its records as the migrations
// say, and every record reads back; opened again, nothing changes.
func TestMigrations(t *testing.T) {
	setBootID(t, "boot-2")
	// meta is a store's meta bucket: the stores in are as an earlier bpfd
	// left them (v0.1.0 recorded no boot id), the stores wanted are as this
	// one left them under boot-2.
	meta := func(version string, boot ...string) map[string]string {
		m := map[string]string{"schema": version, "bpffs": "/run/bpfd/fs"}
		for _, b := range boot {
			m["boot"] = b
		}
		return m
	}
	objects := map[string]string{"00ff": "\x7fELF"}
	current := strconv.Itoa(schemaVersion)
	cases := map[string]struct {
		in, want storeContents
	}{
		"version 1 (v0.1.0): each record is owned by the uid that loaded it": {
			in: storeContents{"meta": meta("1"), "objects": objects,
				"programs": {"1": v1Tracepoint, "2": v1XDP, "3": v1Loading}},
			want: storeContents{"meta": meta(current, "boot-2"), "objects": objects, "programs": {
				"1": withField(t, v1Tracepoint, "owner", `{"uid":1000}`),
				"2": withField(t, v1XDP, "owner", `{"uid":0}`),
				"3": withField(t, v1Loading, "owner", `{"uid":65534}`),
			}},
		},
		"version 1 with a boot id, as bpfd wrote it just before version 2: a record with an owner keeps it": {
			in: storeContents{"meta": meta("1", "boot-1"), "objects": {}, "programs": {
				"1": withField(t, v1Tracepoint, "owner", `{"uid":5,"config":"web"}`),
				"2": withField(t, v1XDP, "owner", `null`),
			}},
			want: storeContents{"meta": meta(current, "boot-2"), "objects": {}, "programs": {
				"1": withField(t, v1Tracepoint, "owner", `{"uid":5,"config":"web"}`),
				"2": withField(t, v1XDP, "owner", `{"uid":0}`),
			}},
		},
		"version 1, empty": {
			in:   storeContents{"meta": meta("1"), "objects": {}, "programs": {}},
			want: storeContents{"meta": meta(current, "boot-2"), "objects": {}, "programs": {}},
		},
		"this version, an earlier boot: only the boot id changes": {
			in: storeContents{"meta": meta(current, "boot-1"), "objects": objects,
				"programs": {"1": withField(t, v1Tracepoint, "owner", `{"uid":3}`)}},
			want: storeContents{"meta": meta(current, "boot-2"), "objects": objects,
				"programs": {"1": withField(t, v1Tracepoint, "owner", `{"uid":3}`)}},
		},
		"this version, this boot: unchanged": {
			in: storeContents{"meta": meta(current, "boot-2"), "objects": objects,
				"programs": {"1": withField(t, v1Tracepoint, "owner", `{"uid":3}`)}},
			want: storeContents{"meta": meta(current, "boot-2"), "objects": objects,
				"programs": {"1": withField(t, v1Tracepoint, "owner", `{"uid":3}`)}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeStore(t, dir, tc.in)
			for range 2 {
				s, err := openStore(dir, "/run/bpfd/fs")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.all(); err != nil {
					t.Errorf("records after migration: %v", err)
				}
				s.close()
				if diff := cmp.Diff(tc.want, readStore(t, dir)); diff != "" {
					t.Fatalf("store after open (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestMigrationsAreIdempotent runs each migration twice on a store of the
// version before it: the second run changes nothing.
func TestMigrationsAreIdempotent(t *testing.T) {
	for _, m := range migrations {
		t.Run(fmt.Sprintf("to %d", m.to), func(t *testing.T) {
			dir := t.TempDir()
			writeStore(t, dir, storeContents{"meta": {"schema": strconv.Itoa(m.to - 1), "bpffs": "/b"}, "objects": {},
				"programs": {"1": v1Tracepoint, "2": v1XDP, "3": v1Loading}})
			db, err := bolt.Open(filepath.Join(dir, storeFile), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			var once storeContents
			for i := range 2 {
				if err := db.Update(m.run); err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					db.Close()
					once = readStore(t, dir)
					if db, err = bolt.Open(filepath.Join(dir, storeFile), 0o600, nil); err != nil {
						t.Fatal(err)
					}
				}
			}
			db.Close()
			if diff := cmp.Diff(once, readStore(t, dir)); diff != "" {
				t.Errorf("store after a second run (-once +twice):\n%s", diff)
			}
		})
	}
}

// TestMigrationsAreListedInOrder checks that the migrations take the store
// one version at a time from 1 to schemaVersion.
func TestMigrationsAreListedInOrder(t *testing.T) {
	for i, m := range migrations {
		if m.to != i+2 || m.run == nil || m.what == "" {
			t.Errorf("migration %d: to %d, want %d, with a function and a description", i, m.to, i+2)
		}
	}
	if n := len(migrations); n == 0 || migrations[n-1].to != schemaVersion {
		t.Errorf("the last migration does not reach schema version %d", schemaVersion)
	}
}

// TestFailedMigrationChangesNothing fails a migration after it rewrote
// every record: the store is left at the version before, as it was, and
// the next open migrates it.
func TestFailedMigrationChangesNothing(t *testing.T) {
	dir := t.TempDir()
	in := storeContents{"meta": {"schema": "1", "bpffs": "/b"}, "objects": {}, "programs": {"1": v1Tracepoint, "2": v1XDP}}
	writeStore(t, dir, in)
	before := readStore(t, dir)

	real := migrations
	t.Cleanup(func() { migrations = real })
	migrations = []migration{{to: 2, what: "fails half way", run: func(tx *bolt.Tx) error {
		if err := migrateOwners(tx); err != nil {
			return err
		}
		return errors.New("disk on fire")
	}}}
	_, err := openStore(dir, "/b")
	if err == nil || !strings.Contains(err.Error(), "disk on fire") || !strings.Contains(err.Error(), "schema version 1 to 2") {
		t.Fatalf("open with a failing migration: %v", err)
	}
	if diff := cmp.Diff(before, readStore(t, dir)); diff != "" {
		t.Fatalf("store after a failed migration (-before +after):\n%s", diff)
	}

	migrations = real
	s, err := openStore(dir, "/b")
	if err != nil {
		t.Fatal(err)
	}
	s.close()
	if got := readStore(t, dir)["meta"]["schema"]; got != strconv.Itoa(schemaVersion) {
		t.Errorf("schema after the next open: %s, want %d", got, schemaVersion)
	}
}

// migrateHelperEnv names the store directory a re-executed test binary
// migrates, hanging inside the migration's transaction once its writes are
// done (KilledMigrationHelper).
const migrateHelperEnv = "BPFD_RUNTIME_MIGRATE_DIR"

// KilledMigrationHelper opens the store in $BPFD_RUNTIME_MIGRATE_DIR with
// migrations that do their work, print "migrated" and wait to be killed
// before their transaction commits.
func KilledMigrationHelper() int {
	real := migrations
	migrations = nil
	for _, m := range real {
		run := m.run
		m.run = func(tx *bolt.Tx) error {
			if err := run(tx); err != nil {
				return err
			}
			fmt.Println("migrated")
			time.Sleep(time.Minute)
			return errors.New("not killed")
		}
		migrations = append(migrations, m)
	}
	if _, err := openStore(os.Getenv(migrateHelperEnv), "/b"); err != nil {
		fmt.Println(err)
	}
	return 1
}

// TestKilledMigrationChangesNothing kills a process in the middle of a
// migration's transaction, its writes done: the store is as before, and
// the next open migrates it.
func TestKilledMigrationChangesNothing(t *testing.T) {
	dir := t.TempDir()
	writeStore(t, dir, storeContents{"meta": {"schema": "1", "bpffs": "/b"}, "objects": {}, "programs": {"1": v1Tracepoint, "2": v1XDP, "3": v1Loading}})
	before := readStore(t, dir)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BPFD_RUNTIME_TEST_HELPER=migrate", migrateHelperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := out.Read(buf)
	if !bytes.HasPrefix(buf[:n], []byte("migrated")) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q, want migrated", buf[:n])
	}
	cmd.Process.Kill()
	cmd.Wait()

	if diff := cmp.Diff(before, readStore(t, dir)); diff != "" {
		t.Fatalf("store after a killed migration (-before +after):\n%s", diff)
	}
	s, err := openStore(dir, "/b")
	if err != nil {
		t.Fatal(err)
	}
	s.close()
	if got := readStore(t, dir)["meta"]["schema"]; got != strconv.Itoa(schemaVersion) {
		t.Errorf("schema after the next open: %s, want %d", got, schemaVersion)
	}
}

// TestStoreRefusesNewerSchema opens stores a newer bpfd wrote, and damaged
// versions: refused with one line naming the file and the versions, and
// the file is left byte for byte as it was.
func TestStoreRefusesNewerSchema(t *testing.T) {
	next := strconv.Itoa(schemaVersion + 1)
	cases := map[string]struct {
		schema   string
		record   string // the store's one record; v1Tracepoint if ""
		tooNew   bool
		mentions []string
	}{
		"the next version": {schema: next, tooNew: true,
			mentions: []string{"schema version " + next, fmt.Sprintf("reads up to %d", schemaVersion), "newer bpfd"}},
		// Opened under another kernel than the one that wrote it, with no
		// pins: a record this bpfd cannot decode is the newer bpfd's, not
		// damage to replace the store for.
		"the next version, a record this bpfd cannot decode": {schema: next, tooNew: true,
			record:   `{"id":1,"state":"loaded","kind":"a kind to come","attach":{"somewhere":1}}`,
			mentions: []string{"schema version " + next, "newer bpfd"}},
		"a far version": {schema: "999", tooNew: true, mentions: []string{"schema version 999"}},
		"not a number":  {schema: "two", mentions: []string{`"two"`, "damaged"}},
		"zero":          {schema: "0", mentions: []string{`"0"`}},
		"empty":         {schema: "", mentions: []string{`""`}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			rec := tc.record
			if rec == "" {
				rec = v1Tracepoint
			}
			writeStore(t, dir, storeContents{"meta": {"schema": tc.schema, "bpffs": "/b", "boot": "an earlier boot"}, "objects": {},
				"programs": {"1": rec}, "future": {"k": "v"}})
			path := filepath.Join(dir, storeFile)
			sum := func() [32]byte {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				return sha256.Sum256(b)
			}
			before := sum()
			_, err := openStore(dir, "/b")
			if err == nil {
				t.Fatal("opened")
			}
			if errors.Is(err, ErrStoreTooNew) != tc.tooNew {
				t.Errorf("errors.Is(%v, ErrStoreTooNew) = %v, want %v", err, !tc.tooNew, tc.tooNew)
			}
			msg := err.Error()
			for _, m := range append(tc.mentions, path) {
				if !strings.Contains(msg, m) {
					t.Errorf("error %q does not mention %q", msg, m)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q is not one line", msg)
			}
			if sum() != before {
				t.Error("the refused store changed")
			}
		})
	}
}
