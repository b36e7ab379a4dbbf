package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
)

// TestMapsAndEventsThroughBpfctl loads map_events for this process, makes
// getppid(2) calls, and finds them in `bpfctl map dump` and `map get`,
// decoded, and in `bpfctl events`, every record of a burst.
func TestMapsAndEventsThroughBpfctl(t *testing.T) {
	n := startNode(t)
	tgid := make([]byte, 4)
	binary.NativeEndian.PutUint32(tgid, uint32(os.Getpid()))
	progs := n.loadJSON(t, "load", "image", n.mapEvents, "--program", "map_events:tracepoint", "--tracepoint", "syscalls/sys_enter_getppid",
		"--global", fmt.Sprintf("target_tgid=%x", tgid))
	id := strconv.FormatUint(progs[0].ID, 10)

	// Events first: the stream reads from its first response on.
	const burst = 500
	var (
		wg     sync.WaitGroup
		code   int
		out    bytes.Buffer
		stderr lockedWriter
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		code = run(context.Background(), []string{"bpfctl", "--socket", n.socket, "events", id, "events_rb", "--count", strconv.Itoa(burst), "--duration", "20s", "-o", "json"}, &out, &stderr)
	}()
	// bpfctl says on stderr when the stream reads.
	for i := 0; !strings.Contains(stderr.String(), "streaming RingBuf map events_rb"); i++ {
		if i == 200 {
			wg.Wait()
			t.Fatalf("bpfctl events did not start streaming: exit %d: %s", code, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for range burst {
		unix.Getppid()
	}
	wg.Wait()
	if code != cliutil.ExitOK {
		t.Fatalf("bpfctl events: exit %d: %s", code, stderr.String())
	}
	events := out.String()
	lines := strings.Split(strings.TrimSpace(events), "\n")
	var records int
	for _, l := range lines {
		var e struct {
			Data   string
			Record struct {
				Pid  int
				Kind string
			}
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("events line %q: %v", l, err)
		}
		if e.Data != "" {
			records++
			if e.Record.Pid != os.Getpid() || !strings.HasPrefix(e.Record.Kind, "KIND_") {
				t.Errorf("events line %q: want this process's record, decoded", l)
			}
		}
	}
	if records != burst {
		t.Errorf("bpfctl events gave %d records of a burst of %d:\n%s", records, burst, events)
	}

	dump := n.mustBpfctl(t, "map", "dump", id, "calls")
	want := fmt.Sprintf(`%d: {"calls":%d,"last_seq":%d,"last_kind":"KIND_EVEN"`, os.Getpid(), burst, burst)
	if !strings.HasPrefix(dump, want) {
		t.Errorf("bpfctl map dump calls:\n%s\nwant it to start with %s", dump, want)
	}
	get := n.mustBpfctl(t, "map", "get", id, "percpu_calls", "0", "-o", "json")
	var entry mapDumpJSON
	if err := json.Unmarshal([]byte(get), &entry); err != nil || len(entry.Entries) != 1 || string(entry.Entries[0].Value) != strconv.Itoa(burst) || !entry.Info.PerCPU {
		t.Errorf("bpfctl map get percpu_calls 0 -o json: %s (%v); want %d summed", get, err, burst)
	}
	if c, _, stderr := n.bpfctl(t, "map", "get", id, "calls", "0x0102"); c != cliutil.ExitUsage && c != cliutil.ExitError || !strings.Contains(stderr, "key of 2 bytes") {
		t.Errorf("map get with a 2-byte key: exit %d: %s", c, stderr)
	}
	if c, _, stderr := n.bpfctl(t, "map", "get", id, "nope", "1"); c != cliutil.ExitNotFound {
		t.Errorf("map get of an unknown map: exit %d: %s", c, stderr)
	}
	n.mustBpfctl(t, "map", "update", id, "calls", "7", `{"calls":9,"comm":"seven"}`)
	if got := n.mustBpfctl(t, "map", "get", id, "calls", "7"); !strings.Contains(got, `"calls":9`) || !strings.Contains(got, `"seven"`) {
		t.Errorf("map get after update: %s", got)
	}
	n.mustBpfctl(t, "map", "delete", id, "calls", "7")
	n.mustBpfctl(t, "unload", id)
}

// lockedWriter is a buffer one goroutine writes while another reads it.
type lockedWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
