package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// mapClientResult is what the unprivileged map client saw: the status code
// of each call, and the events of its own getppid(2) calls.
type mapClientResult struct {
	Codes  map[string]string
	Events eventsSummary
}

// mapClientCalls is how many getppid(2) calls the map client makes while
// it streams events.
const mapClientCalls = 300

// mapClientHelper, as an unprivileged client, dumps the maps of the
// program BPFD_PROGRAM (root's), tries to write them, streams its ring
// buffer's events while calling getppid(2), then loads map_events itself
// (becoming its owner) and writes that one's maps. It prints a
// mapClientResult.
func mapClientHelper() int {
	out := mapClientResult{Codes: map[string]string{}}
	defer func() { json.NewEncoder(os.Stdout).Encode(out) }()
	conn, err := grpc.NewClient("unix://"+os.Getenv("BPFD_SOCKET"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		out.Codes["connect"] = err.Error()
		return 0
	}
	defer conn.Close()
	c := pb.NewBpfdClient(conn)
	ctx := context.Background()
	id, _ := strconv.ParseUint(os.Getenv("BPFD_PROGRAM"), 10, 64)
	code := func(name string, err error) { out.Codes[name] = status.Code(err).String() }
	_, err = c.MapDump(ctx, &pb.MapDumpRequest{Id: id, Map: "calls"})
	code("dump", err)
	_, err = c.MapUpdate(ctx, &pb.MapUpdateRequest{Id: id, Map: "calls", KeyJson: "1", ValueJson: `{"calls":1}`})
	code("update", err)
	_, err = c.MapDelete(ctx, &pb.MapDeleteRequest{Id: id, Map: "calls", KeyJson: "1"})
	code("delete", err)
	out.Events, err = streamEvents(ctx, c, &pb.EventsRequest{Id: id, Map: "events_rb"}, os.Getpid(), mapClientCalls, func() {
		for range mapClientCalls {
			unix.Getppid()
		}
	})
	code("events", err)
	resp, err := c.Load(ctx, &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: "file:" + filepath.Join(bytecodeDir, "map_events.bpf.o")},
		Programs: []*pb.LoadProgram{tracepointProg("map_events", "syscalls/sys_enter_getppid")}})
	code("load own", err)
	if err != nil {
		return 0
	}
	own := resp.GetPrograms()[0].GetId()
	_, err = c.MapUpdate(ctx, &pb.MapUpdateRequest{Id: own, Map: "calls", KeyJson: "1", ValueJson: `{"calls":1}`})
	code("update own", err)
	_, err = c.Unload(ctx, &pb.UnloadRequest{Ids: []uint64{own}})
	code("unload own", err)
	return 0
}

// TestMapsUnprivileged: a client that is neither root nor an admin reads
// the maps and streams the events of a program root loaded, decoded, but
// may not write its maps; it may write the maps of the program it loaded.
func TestMapsUnprivileged(t *testing.T) {
	dir := publicDir(t)
	td := newTestDaemon(t, func(c *Config) { c.Socket.Path = filepath.Join(dir, "bpfd.sock") })
	if err := os.Chmod(td.cfg.Socket.Path, 0o666); err != nil {
		t.Fatal(err)
	}
	p := td.loadMapEvents(t, td.mapEventsImage(t), 0)
	helper := publicCopy(t, dir)
	cmd := exec.Command(helper)
	cmd.Env = append(os.Environ(), helperEnv+"=mapclient", "BPFD_SOCKET="+td.cfg.Socket.Path, "BPFD_PROGRAM="+fmt.Sprint(p.GetId()))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("map client: %v\n%s", err, raw)
	}
	var got mapClientResult
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("map client said %q: %v", raw, err)
	}
	want := map[string]string{"dump": "OK", "update": "PermissionDenied", "delete": "PermissionDenied", "events": "OK", "load own": "OK", "update own": "OK", "unload own": "OK"}
	for k, v := range want {
		if got.Codes[k] != v {
			t.Errorf("%s by nobody: %s, want %s (all: %v)", k, got.Codes[k], v, got.Codes)
		}
	}
	if e := got.Events; e.Mine+int(e.Lost+e.Dropped) != mapClientCalls || e.RecordType != "struct event" || e.Decoded != e.Records {
		t.Errorf("events streamed to nobody: %+v; want %d of its records, decoded as struct event", e, mapClientCalls)
	}
	if a := td.lastAudit(t, "map-update"); a["uid"] != float64(nobody) {
		t.Errorf("audit of the last map update: %v, want nobody's", a)
	}
}
