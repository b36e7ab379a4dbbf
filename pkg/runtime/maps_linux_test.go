package runtime_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

// loadMapEvents loads map_events for this process's getppid(2) calls.
func loadMapEvents(t *testing.T, m *runtime.Manager) runtime.Program {
	t.Helper()
	tgid := make([]byte, 4)
	binary.NativeEndian.PutUint32(tgid, uint32(os.Getpid()))
	progs, err := load(context.Background(), m, "file:map_events.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{{
		Name: "map_events", Kind: progtype.Tracepoint, Attach: runtime.TracepointAttach{Tracepoint: "syscalls/sys_enter_getppid"},
	}}, Globals: map[string][]byte{"target_tgid": tgid}})
	if err != nil {
		t.Fatalf("load map_events: %v", err)
	}
	return progs[0]
}

func openMap(t *testing.T, m *runtime.Manager, id runtime.ID, name string) *runtime.OpenMap {
	t.Helper()
	om, err := m.OpenMap(context.Background(), id, name)
	if err != nil {
		t.Fatalf("OpenMap %s: %v", name, err)
	}
	t.Cleanup(func() { om.Close() })
	return om
}

func getppids(n int) {
	for range n {
		unix.Getppid()
	}
}

func comm(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestMapDump checks that the dumps of map_events' maps, decoded with its
// BTF, say what the calls the test made wrote.
func TestMapDump(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	p := loadMapEvents(t, m)
	const n = 25
	getppids(n)
	pid := os.Getpid()

	calls := openMap(t, m, p.ID, "calls")
	entries, more, err := calls.Dump(nil, 0, false)
	if err != nil || more {
		t.Fatalf("Dump calls: more %v, error %v", more, err)
	}
	want := []string{fmt.Sprint(pid), fmt.Sprintf(`{"calls":%d,"last_seq":%d,"last_kind":"KIND_ODD","comm":%q}`, n, n, comm(t))}
	if len(entries) != 1 {
		t.Fatalf("Dump calls: %d entries, want 1", len(entries))
	}
	if diff := cmp.Diff(want, []string{entries[0].KeyJSON, entries[0].ValueJSON}); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	key, err := calls.ParseKey(fmt.Sprint(pid))
	if err != nil {
		t.Fatal(err)
	}
	got, err := calls.Lookup(key, false)
	if err != nil || got.ValueJSON != want[1] {
		t.Errorf("Lookup %d: %q, %v; want %q", pid, got.ValueJSON, err, want[1])
	}

	percpu := openMap(t, m, p.ID, "percpu_calls")
	zero, _ := percpu.ParseKey("0")
	sum, err := percpu.Lookup(zero, false)
	if err != nil || sum.ValueJSON != fmt.Sprint(n) {
		t.Errorf("percpu_calls summed: %q, %v; want %d", sum.ValueJSON, err, n)
	}
	each, err := percpu.Lookup(zero, true)
	if err != nil {
		t.Fatal(err)
	}
	var perCPU []uint64
	if err := json.Unmarshal([]byte(each.ValueJSON), &perCPU); err != nil {
		t.Fatalf("percpu_calls per CPU %q: %v", each.ValueJSON, err)
	}
	var total uint64
	for _, v := range perCPU {
		total += v
	}
	if total != n || len(each.PerCPU) != len(perCPU) {
		t.Errorf("percpu_calls per CPU %s: sum %d over %d raw values, want %d", each.ValueJSON, total, len(each.PerCPU), n)
	}

	bss := openMap(t, m, p.ID, ".bss")
	entries, _, err = bss.Dump(nil, 0, false)
	if err != nil || len(entries) != 1 || entries[0].ValueJSON != fmt.Sprintf(`{"seq":%d,"ringbuf_full":0,"unused_event":0}`, n) {
		t.Errorf(".bss: %+v, %v", entries, err)
	}
}

// TestMapDumpPages checks that a dump bounded to fewer entries than the
// map has pages through all of them.
func TestMapDumpPages(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	p := loadMapEvents(t, m)
	calls := openMap(t, m, p.ID, "calls")
	for i := range 5 {
		k, _ := calls.ParseKey(fmt.Sprint(100000 + i))
		v, err := calls.ParseValue(fmt.Sprintf(`{"calls":%d,"last_kind":"KIND_EVEN","comm":"x"}`, i))
		if err != nil {
			t.Fatal(err)
		}
		if err := calls.Update(k, v); err != nil {
			t.Fatal(err)
		}
	}
	var after []byte
	seen := map[string]bool{}
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("more than 5 pages of 2")
		}
		entries, more, err := calls.Dump(after, 2, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range entries {
			seen[en.KeyJSON] = true
			after = en.Key
		}
		if !more {
			break
		}
	}
	if len(seen) != 5 {
		t.Errorf("pages of 2 gave %d keys, want 5: %v", len(seen), seen)
	}
}

// TestMapRequestsRefused checks the errors of requests that do not fit
// the map.
func TestMapRequestsRefused(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	p := loadMapEvents(t, m)
	calls := openMap(t, m, p.ID, "calls")
	rb := openMap(t, m, p.ID, "events_rb")
	cases := map[string]struct {
		do   func() error
		want error
	}{
		"unknown map":      {func() error { _, err := m.OpenMap(context.Background(), p.ID, "nope"); return err }, runtime.ErrMapNotFound},
		"unknown program":  {func() error { _, err := m.OpenMap(context.Background(), p.ID+100, "calls"); return err }, runtime.ErrProgramNotFound},
		"short key":        {func() error { _, err := calls.Lookup([]byte{1}, false); return err }, runtime.ErrInvalid},
		"missing key":      {func() error { _, err := calls.Lookup([]byte{1, 2, 3, 4}, false); return err }, runtime.ErrMapNotFound},
		"short start":      {func() error { _, _, err := calls.Dump([]byte{1}, 1, false); return err }, runtime.ErrInvalid},
		"key not a number": {func() error { _, err := calls.ParseKey(`"x"`); return err }, runtime.ErrInvalid},
		"short value":      {func() error { return calls.Update([]byte{1, 2, 3, 4}, []byte{1}) }, runtime.ErrInvalid},
		"dump ring buffer": {func() error { _, _, err := rb.Dump(nil, 0, false); return err }, runtime.ErrInvalid},
		"events of a hash": {func() error { _, err := calls.Events(runtime.EventOptions{}); return err }, runtime.ErrInvalid},
		"huge buffer": {func() error {
			_, err := rb.Events(runtime.EventOptions{Buffer: runtime.MaxEventBuffer + 1})
			return err
		}, runtime.ErrInvalid},
		"no such record": {func() error { _, err := rb.RecordType("struct nope"); return err }, runtime.ErrInvalid},
		"delete missing": {func() error { return calls.Delete([]byte{1, 2, 3, 4}) }, runtime.ErrMapNotFound},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if err := tc.do(); !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
}

// TestEvents checks that a burst of records reaches a reader that keeps
// up, every one, decoded, from the ring buffer and the perf event array,
// and none written before it started.
func TestEvents(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	p := loadMapEvents(t, m)
	for _, name := range []string{"events_rb", "events_perf"} {
		t.Run(name, func(t *testing.T) {
			om := openMap(t, m, p.ID, name)
			typ, err := om.RecordType("struct event")
			if err != nil {
				t.Fatal(err)
			}
			// Records written while nobody reads are not the reader's.
			getppids(100)
			r, err := om.Events(runtime.EventOptions{RecordType: typ})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if _, err := om.Events(runtime.EventOptions{}); !errors.Is(err, runtime.ErrConflict) {
				t.Errorf("a second reader: error %v, want ErrConflict", err)
			}
			const n = 1000
			getppids(n)
			recs := readRecords(t, r, n)
			var first uint64
			for i, rec := range recs {
				var ev struct {
					Seq  uint64
					Pid  int
					Kind string
					Comm string
				}
				if err := json.Unmarshal([]byte(rec.JSON), &ev); err != nil {
					t.Fatalf("record %d %x: JSON %q: %v", i, rec.Data, rec.JSON, err)
				}
				if i == 0 {
					first = ev.Seq
				}
				kind := map[bool]string{true: "KIND_ODD", false: "KIND_EVEN"}[ev.Seq%2 == 1]
				if ev.Seq != first+uint64(i) && name == "events_rb" || ev.Pid != os.Getpid() || ev.Kind != kind || ev.Comm != comm(t) {
					t.Fatalf("record %d: %s", i, rec.JSON)
				}
			}
			if len(recs) != n || r.Lost() != 0 || r.Dropped() != 0 {
				t.Errorf("%d records, %d lost, %d dropped; want %d, 0, 0", len(recs), r.Lost(), r.Dropped(), n)
			}
		})
	}
}

// TestEventsSlowReader checks that a reader whose buffer overflows drops
// records, counts every one, and never holds the program up.
func TestEventsSlowReader(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	p := loadMapEvents(t, m)
	om := openMap(t, m, p.ID, "events_rb")
	r, err := om.Events(runtime.EventOptions{Buffer: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const n = 500
	getppids(n)
	eventually(t, "the reader to have read or dropped the burst", func() bool { return r.Dropped() == n-10 })
	recs := readRecords(t, r, 10)
	if len(recs) != 10 || r.Dropped() != n-10 {
		t.Errorf("%d records, %d dropped; want 10, %d", len(recs), r.Dropped(), n-10)
	}
}

// readRecords reads until it has n records or none came for a second.
func readRecords(t *testing.T, r *runtime.EventReader, n int) []runtime.EventRecord {
	t.Helper()
	var out []runtime.EventRecord
	for len(out) < n {
		recs, err := r.Next(context.Background(), n-len(out), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		out = append(out, recs...)
	}
	return out
}
