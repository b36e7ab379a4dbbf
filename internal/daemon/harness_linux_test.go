package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/verify"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// testDaemon is a Daemon serving on a unix socket in a temporary directory,
// with its own state dir, cache, bpffs and trust policy, and a gRPC client.
// The policy trusts key for oci:<dir>/images/** and admits the repository's
// bytecode/ files unsigned.
type testDaemon struct {
	dir    string
	images string
	cfg    *Config
	key    *signer

	// httpClient, if set, is the daemon's registry client from its next
	// start.
	httpClient *http.Client
	// logged holds the daemon's log lines, which also go to the test's log.
	logged lockedBuffer

	d      *Daemon
	cancel context.CancelFunc
	served chan error

	conn   *grpc.ClientConn
	client pb.BpfdClient
}

// newTestDaemon starts a daemon; changes adjust its configuration. It and
// everything it loaded are gone at the end of the test.
func newTestDaemon(t *testing.T, changes ...Override) *testDaemon {
	t.Helper()
	testutil.RequirePrivileged(t)
	dir := t.TempDir()
	td := &testDaemon{dir: dir, images: filepath.Join(dir, "images"), key: newSigner(t)}
	base := func(c *Config) {
		c.Socket.Path = filepath.Join(dir, "run", "bpfd.sock")
		c.Socket.Group = ""
		c.StateDir = filepath.Join(dir, "state")
		c.BpffsDir = filepath.Join(dir, "bpffs")
		c.PolicyFile = filepath.Join(dir, "policy.yaml")
		c.Log.AuditFile = filepath.Join(dir, "audit.log")
	}
	cfg, err := ParseConfig(nil, append([]Override{base}, changes...)...)
	if err != nil {
		t.Fatal(err)
	}
	td.cfg = cfg
	td.writePolicy(t)
	t.Cleanup(func() {
		if td.d != nil {
			td.unloadAll(t)
			td.stop(t)
		}
		unix.Unmount(cfg.BpffsDir, unix.MNT_DETACH)
	})
	td.start(t)
	return td
}

// writePolicy writes the test policy, with extra rules first.
func (td *testDaemon) writePolicy(t *testing.T, extra ...policyRule) {
	t.Helper()
	rules := append(extra,
		policyRule{Name: "images", Images: []string{"oci:" + td.images + "/**"}, Keys: []string{td.key.pub}},
		policyRule{Name: "local", Images: []string{"file:" + bytecodeDir + "/**"}},
	)
	writePolicy(t, td.cfg.PolicyFile, rules...)
}

// start opens the daemon on the configured dirs and serves.
func (td *testDaemon) start(t *testing.T) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, &td.logged), &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := New(context.Background(), td.cfg, Options{Logger: log, HTTPClient: td.httpClient})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	td.d, td.cancel, td.served = d, cancel, make(chan error, 1)
	go func() { td.served <- d.Serve(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-td.served:
		d.Close()
		td.d = nil
		t.Fatalf("Serve: %v", err)
	}
	td.conn = td.dial(t)
	td.client = pb.NewBpfdClient(td.conn)
}

// dial returns a new client connection to the daemon.
func (td *testDaemon) dial(t *testing.T) *grpc.ClientConn {
	conn, err := grpc.NewClient("unix://"+td.cfg.Socket.Path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Error(err)
	}
	return conn
}

// stop stops serving and closes the daemon; programs stay loaded.
func (td *testDaemon) stop(t *testing.T) {
	t.Helper()
	td.conn.Close()
	td.cancel()
	if err := <-td.served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if err := td.d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	td.d = nil
}

func (td *testDaemon) restart(t *testing.T) {
	t.Helper()
	td.stop(t)
	td.start(t)
}

func (td *testDaemon) unloadAll(t *testing.T) {
	t.Helper()
	resp, err := td.client.List(context.Background(), &pb.ListRequest{})
	if err != nil {
		t.Errorf("List: %v", err)
		return
	}
	var ids []uint64
	for _, p := range resp.GetPrograms() {
		ids = append(ids, p.GetId())
	}
	if len(ids) > 0 {
		if _, err := td.client.Unload(context.Background(), &pb.UnloadRequest{Ids: ids}); err != nil {
			t.Errorf("Unload %v: %v", ids, err)
		}
	}
}

// image builds an artifact of objects at images/name:v1 and returns its
// reference by digest; signed by the trusted key unless unsigned.
func (td *testDaemon) image(t *testing.T, name string, signed bool, objects ...string) string {
	t.Helper()
	ref := buildArtifact(t, "oci:"+filepath.Join(td.images, name)+":v1", objects...)
	if signed {
		td.key.sign(t, ref, verify.FormatBundle)
	}
	return ref
}

// load sends a Load request for programs of ref.
func (td *testDaemon) load(t *testing.T, ref string, programs ...*pb.LoadProgram) (*pb.LoadResponse, error) {
	t.Helper()
	return td.client.Load(context.Background(), &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: ref}, Programs: programs})
}

// mustLoad loads and fails the test on error.
func (td *testDaemon) mustLoad(t *testing.T, ref string, programs ...*pb.LoadProgram) []*pb.Program {
	t.Helper()
	resp, err := td.load(t, ref, programs...)
	if err != nil {
		t.Fatalf("Load %s: %v", ref, err)
	}
	return resp.GetPrograms()
}

func (td *testDaemon) unload(t *testing.T, ids ...uint64) {
	t.Helper()
	if _, err := td.client.Unload(context.Background(), &pb.UnloadRequest{Ids: ids}); err != nil {
		t.Fatalf("Unload %v: %v", ids, err)
	}
}

// state is what a failed request must leave unchanged.
type state struct {
	Pins     []string
	Programs []uint64
	// FDs counts open descriptors other than sockets: BPF objects, files.
	// Sockets come and go with the registry connections that HTTP clients
	// keep alive, the daemon's and the tests' own.
	FDs int
}

// snapshot reads the pin directories, the managed programs and this
// process's open descriptors (the daemon runs in it).
func (td *testDaemon) snapshot(t *testing.T) state {
	t.Helper()
	var s state
	entries, err := os.ReadDir(td.cfg.BpffsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".debug") {
			s.Pins = append(s.Pins, e.Name())
		}
	}
	resp, err := td.client.List(context.Background(), &pb.ListRequest{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, p := range resp.GetPrograms() {
		s.Programs = append(s.Programs, p.GetId())
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && !strings.HasPrefix(target, "socket:") {
			s.FDs++
		}
	}
	return s
}

// assertUnchanged checks that nothing leaked since before and that the
// daemon still serves.
func (td *testDaemon) assertUnchanged(t *testing.T, before state) {
	t.Helper()
	// Descriptors of a failed request may close a moment after its reply.
	var after state
	for range 50 {
		if after = td.snapshot(t); after.FDs <= before.FDs {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Fewer is no leak: a registry process killed meanwhile closed its
	// output pipes.
	after.FDs = max(after.FDs, before.FDs)
	if diff := cmp.Diff(before, after, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("state changed (-before +after):\n%s", diff)
	}
	td.assertServing(t)
}

func (td *testDaemon) assertServing(t *testing.T) {
	t.Helper()
	resp, err := healthpb.NewHealthClient(td.conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "bpfd.v1.Bpfd"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v, %v", resp, err)
	}
}

// auditLines returns the audit log's lines with the given action.
func (td *testDaemon) auditLines(t *testing.T, action string) []map[string]any {
	t.Helper()
	f, err := os.Open(td.cfg.Log.AuditFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if line["action"] == action {
			out = append(out, line)
		}
	}
	return out
}

// lastAudit returns the last audit line with the given action.
func (td *testDaemon) lastAudit(t *testing.T, action string) map[string]any {
	t.Helper()
	lines := td.auditLines(t, action)
	if len(lines) == 0 {
		t.Fatalf("no %s line in the audit log", action)
	}
	return lines[len(lines)-1]
}

// wantCode checks err's status code and that its message has every part.
func wantCode(t *testing.T, err error, code codes.Code, parts ...string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("error %v: code %v, want %v", err, st.Code(), code)
	}
	for _, p := range parts {
		if !strings.Contains(st.Message(), p) {
			t.Errorf("error %q does not mention %q", st.Message(), p)
		}
	}
}

// mapPin returns the pin of the program's map name.
func mapPin(t *testing.T, p *pb.Program, name string) string {
	t.Helper()
	for _, m := range p.GetMaps() {
		if m.GetName() == name {
			return m.GetPinPath()
		}
	}
	t.Fatalf("program %d has no map %s", p.GetId(), name)
	return ""
}

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

// ids returns the programs' ids.
func ids(progs []*pb.Program) []uint64 {
	var out []uint64
	for _, p := range progs {
		out = append(out, p.GetId())
	}
	return out
}

// kernelHasProgram reports whether the kernel still has the program id.
func kernelHasProgram(id uint32) bool {
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return false
	}
	p.Close()
	return true
}

// Program specs, for brevity.
func xdpProg(name, iface, netns string) *pb.LoadProgram {
	return &pb.LoadProgram{Name: name, Type: pb.ProgramType_PROGRAM_TYPE_XDP, Attach: &pb.AttachSpec{Spec: &pb.AttachSpec_Xdp{Xdp: &pb.XdpAttach{Interface: iface, Netns: netns}}}}
}

func tcProg(name, iface, netns string, dir pb.Direction) *pb.LoadProgram {
	return &pb.LoadProgram{Name: name, Type: pb.ProgramType_PROGRAM_TYPE_TC, Attach: &pb.AttachSpec{Spec: &pb.AttachSpec_Tc{Tc: &pb.TcAttach{Interface: iface, Netns: netns, Direction: dir}}}}
}

func tcxProg(name, iface, netns string, dir pb.Direction) *pb.LoadProgram {
	return &pb.LoadProgram{Name: name, Type: pb.ProgramType_PROGRAM_TYPE_TCX, Attach: &pb.AttachSpec{Spec: &pb.AttachSpec_Tcx{Tcx: &pb.TcxAttach{Interface: iface, Netns: netns, Direction: dir}}}}
}

func tracepointProg(name, tp string) *pb.LoadProgram {
	return &pb.LoadProgram{Name: name, Type: pb.ProgramType_PROGRAM_TYPE_TRACEPOINT, Attach: &pb.AttachSpec{Spec: &pb.AttachSpec_Tracepoint{Tracepoint: &pb.TracepointAttach{Tracepoint: tp}}}}
}

// stringsOf returns the audit field as a string slice.
func stringsOf(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		out = append(out, x.(string))
	}
	return out
}

// numbersOf returns the audit field as uint64s.
func numbersOf(v any) []uint64 {
	var out []uint64
	list, _ := v.([]any)
	for _, x := range list {
		out = append(out, uint64(x.(float64)))
	}
	return out
}

// lockedBuffer is a bytes.Buffer safe for concurrent writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
