package daemon

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"

	"github.com/bpfd-dev/bpfd/internal/testing/testimage"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// mapEventsImage builds a signed artifact of map_events whose annotations
// name the record type of its ring buffer.
func (td *testDaemon) mapEventsImage(t *testing.T) string {
	t.Helper()
	ref, err := testimage.BuildAnnotated(context.Background(), "oci:"+filepath.Join(td.images, "map-events")+":v1",
		map[string]string{ArtifactRecordTypeKey + "events_rb": "struct event"}, filepath.Join(bytecodeDir, "map_events.bpf.o"))
	if err != nil {
		t.Fatal(err)
	}
	td.key.sign(t, ref, "bundle")
	return ref
}

// loadMapEvents loads map_events for the getppid(2) calls of process tgid
// (0: every process).
func (td *testDaemon) loadMapEvents(t *testing.T, ref string, tgid int) *pb.Program {
	t.Helper()
	target := make([]byte, 4)
	binary.NativeEndian.PutUint32(target, uint32(tgid))
	resp, err := td.client.Load(context.Background(), &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: ref},
		Programs: []*pb.LoadProgram{tracepointProg("map_events", "syscalls/sys_enter_getppid")}, GlobalData: map[string][]byte{"target_tgid": target}})
	if err != nil {
		t.Fatalf("load map_events: %v", err)
	}
	return resp.GetPrograms()[0]
}

func threadComm(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestMapsThroughAPI dumps map_events' maps through the API and finds, decoded
// with the program's BTF, what the test's calls wrote; writes are the
// owner's and admins' only.
func TestMapsThroughAPI(t *testing.T) {
	td := newTestDaemon(t)
	p := td.loadMapEvents(t, td.mapEventsImage(t), os.Getpid())
	if got := p.GetMetadata()[RecordTypeKey+"events_rb"]; got != "struct event" {
		t.Errorf("metadata %v: want the artifact's record type for events_rb", p.GetMetadata())
	}
	const n = 40
	for range n {
		unix.Getppid()
	}
	ctx := context.Background()
	dump, err := td.client.MapDump(ctx, &pb.MapDumpRequest{Id: p.GetId(), Map: "calls"})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"calls":%d,"last_seq":%d,"last_kind":"KIND_EVEN","comm":%q}`, n, n, threadComm(t))
	if len(dump.GetEntries()) != 1 || dump.GetEntries()[0].GetKeyJson() != strconv.Itoa(os.Getpid()) || dump.GetEntries()[0].GetValueJson() != want {
		t.Errorf("calls: %v; want one entry, %d: %s", dump.GetEntries(), os.Getpid(), want)
	}
	if d := dump.GetMap(); d.GetValueType() != "struct call_stats" || d.GetKeyType() != "__u32" || d.GetMapType() != "Hash" {
		t.Errorf("calls described as %v", d)
	}
	get, err := td.client.MapGet(ctx, &pb.MapGetRequest{Id: p.GetId(), Map: "percpu_calls", KeyJson: "0"})
	if err != nil || get.GetEntry().GetValueJson() != strconv.Itoa(n) || !get.GetMap().GetPerCpu() {
		t.Errorf("percpu_calls[0] summed: %v, %v; want %d", get, err, n)
	}
	if _, err := td.client.MapUpdate(ctx, &pb.MapUpdateRequest{Id: p.GetId(), Map: "calls", KeyJson: "7", ValueJson: `{"calls":3,"comm":"seven"}`}); err != nil {
		t.Fatal(err)
	}
	get, err = td.client.MapGet(ctx, &pb.MapGetRequest{Id: p.GetId(), Map: "calls", KeyJson: "7"})
	if err != nil || get.GetEntry().GetValueJson() != `{"calls":3,"last_seq":0,"last_kind":0,"comm":"seven"}` {
		t.Errorf("calls[7] after update: %v, %v", get, err)
	}
	if _, err := td.client.MapDelete(ctx, &pb.MapDeleteRequest{Id: p.GetId(), Map: "calls", KeyJson: "7"}); err != nil {
		t.Fatal(err)
	}
	if a := td.lastAudit(t, "map-delete"); a["result"] != "ok" {
		t.Errorf("audit of map-delete: %v", a)
	}

	cases := map[string]struct {
		call func() error
		code codes.Code
	}{
		"unknown map": {func() error {
			_, err := td.client.MapDump(ctx, &pb.MapDumpRequest{Id: p.GetId(), Map: "nope"})
			return err
		}, codes.NotFound},
		"unknown program": {func() error {
			_, err := td.client.MapDump(ctx, &pb.MapDumpRequest{Id: p.GetId() + 100, Map: "calls"})
			return err
		}, codes.NotFound},
		"no id": {func() error {
			_, err := td.client.MapGet(ctx, &pb.MapGetRequest{Map: "calls", KeyJson: "1"})
			return err
		}, codes.InvalidArgument},
		"key of the wrong size": {func() error {
			_, err := td.client.MapGet(ctx, &pb.MapGetRequest{Id: p.GetId(), Map: "calls", Key: []byte{1, 2}})
			return err
		}, codes.InvalidArgument},
		"key and key_json": {func() error {
			_, err := td.client.MapGet(ctx, &pb.MapGetRequest{Id: p.GetId(), Map: "calls", Key: []byte{1, 2, 3, 4}, KeyJson: "1"})
			return err
		}, codes.InvalidArgument},
		"missing key": {func() error {
			_, err := td.client.MapGet(ctx, &pb.MapGetRequest{Id: p.GetId(), Map: "calls", KeyJson: "1"})
			return err
		}, codes.NotFound},
		"value too big": {func() error {
			_, err := td.client.MapUpdate(ctx, &pb.MapUpdateRequest{Id: p.GetId(), Map: "calls", KeyJson: "1", ValueJson: `{"calls":-1}`})
			return err
		}, codes.InvalidArgument},
		"events of a hash": {func() error {
			s, err := td.client.Events(ctx, &pb.EventsRequest{Id: p.GetId(), Map: "calls"})
			if err == nil {
				_, err = s.Recv()
			}
			return err
		}, codes.InvalidArgument},
		"unknown record type": {func() error {
			s, err := td.client.Events(ctx, &pb.EventsRequest{Id: p.GetId(), Map: "events_rb", RecordType: "struct nope"})
			if err == nil {
				_, err = s.Recv()
			}
			return err
		}, codes.InvalidArgument},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) { wantCode(t, tc.call(), tc.code) })
	}
}

// eventsSummary is what a client of Events saw.
type eventsSummary struct {
	Records, Decoded, Mine int
	Lost, Dropped          uint64
	RecordType             string
}

// streamEvents streams the map's events, calls trigger once the stream is
// reading, and reads until it has accounted for n records of process pid
// or a second passes without a response.
func streamEvents(ctx context.Context, client pb.BpfdClient, req *pb.EventsRequest, pid, n int, trigger func()) (eventsSummary, error) {
	var s eventsSummary
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.Events(ctx, req)
	if err != nil {
		return s, err
	}
	first, err := stream.Recv()
	if err != nil {
		return s, err
	}
	s.RecordType = first.GetRecordType()
	trigger()
	type result struct {
		r   *pb.EventsResponse
		err error
	}
	for s.Mine+int(s.Lost+s.Dropped) < n {
		ch := make(chan result, 1)
		go func() {
			r, err := stream.Recv()
			ch <- result{r, err}
		}()
		var r result
		select {
		case r = <-ch:
		case <-time.After(2 * time.Second):
			return s, nil
		}
		if r.err != nil {
			return s, r.err
		}
		s.Lost, s.Dropped = r.r.GetLost(), r.r.GetDropped()
		for _, rec := range r.r.GetRecords() {
			s.Records++
			var ev struct{ Pid int }
			if rec.GetJson() != "" && json.Unmarshal([]byte(rec.GetJson()), &ev) == nil {
				s.Decoded++
			}
			if ev.Pid == pid || rec.GetJson() == "" && len(rec.GetData()) >= 12 && int(binary.NativeEndian.Uint32(rec.GetData()[8:])) == pid {
				s.Mine++
			}
		}
	}
	return s, nil
}

// TestEventsThroughAPI streams bursts of records from the ring buffer
// (decoded with the type the artifact names) and the perf event array
// (raw): every record arrives, or is counted lost or dropped.
func TestEventsThroughAPI(t *testing.T) {
	td := newTestDaemon(t)
	p := td.loadMapEvents(t, td.mapEventsImage(t), os.Getpid())
	const n = 2000
	burst := func() {
		for range n {
			unix.Getppid()
		}
	}
	cases := map[string]struct {
		req         *pb.EventsRequest
		wantType    string
		wantDecoded bool
	}{
		"ring buffer, the artifact's type": {&pb.EventsRequest{Id: p.GetId(), Map: "events_rb"}, "struct event", true},
		"perf event array, raw":            {&pb.EventsRequest{Id: p.GetId(), Map: "events_perf"}, "", false},
		"perf event array, typed":          {&pb.EventsRequest{Id: p.GetId(), Map: "events_perf", RecordType: "event"}, "struct event", true},
		"small buffer":                     {&pb.EventsRequest{Id: p.GetId(), Map: "events_perf", Buffer: 8}, "", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := streamEvents(context.Background(), td.client, tc.req, os.Getpid(), n, burst)
			if err != nil {
				t.Fatal(err)
			}
			if s.RecordType != tc.wantType || s.Mine+int(s.Lost+s.Dropped) != n || tc.wantDecoded && s.Decoded != s.Records {
				t.Errorf("got %+v; want record type %q and %d records delivered or counted lost or dropped", s, tc.wantType, n)
			}
			t.Logf("%+v", s)
		})
	}
}
