package badinput_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/bpfd-dev/bpfd/internal/daemon"
	"github.com/bpfd-dev/bpfd/internal/testing/badinput"
	"github.com/bpfd-dev/bpfd/internal/testing/testimage"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/verify"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// The request surface sends each entry's file, a protojson message, to a
// real bpfd over its unix socket: one daemon for the whole test binary
// (started by the first request entry, stopped by TestMain), serving a
// signed artifact of xdp_verdict and tracepoint_counter from an OCI layout
// ({{image}} by digest, {{image.tag}} by its tag).
// Every entry gets a veth pair of its own ({{interface}} is its host end).
// After each entry the daemon must manage no program, its bpffs must hold
// what it held before, and the interface must run no XDP program.
func init() {
	surfaces["request"] = surface{
		prepare: prepareRequest,
		ops:     map[string]func(context.Context, *run) error{"send": sendRequest},
		classes: map[string]func(error) bool{
			"invalid-argument":    hasCode(codes.InvalidArgument),
			"not-found":           hasCode(codes.NotFound),
			"failed-precondition": hasCode(codes.FailedPrecondition),
			"permission-denied":   hasCode(codes.PermissionDenied),
			"already-exists":      hasCode(codes.AlreadyExists),
		},
		reason:    errorInfoReason,
		leftovers: requestLeftovers,
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if err := stopRequestDaemon(); err != nil {
		fmt.Fprintln(os.Stderr, "request surface:", err)
		code = 1
	}
	os.Exit(code)
}

// requestDaemon is the request surface's bpfd.
type requestDaemon struct {
	dir, bpffs string
	// image is the artifact by digest, imageTag by its tag (never pulled).
	image, imageTag string
	client          pb.BpfdClient
	conn            *grpc.ClientConn
	// The daemon serves csi.bpfd.io too, for the csi surface.
	csiSocket, podsDir, stagingDir string
	csiConn                        *grpc.ClientConn
	daemon                         *daemon.Daemon
	cancel                         context.CancelFunc
	served                         chan error
	// loaded are the programs a control entry loaded, unloaded by
	// requestLeftovers; pins are the paths under bpffs before the entry.
	loaded []uint64
	pins   []string
}

var (
	requestOnce    sync.Once
	sharedDaemon   *requestDaemon
	requestStartup error
)

// requestObjects are the objects of the artifact requests load.
var requestObjects = []string{"xdp_verdict", "tracepoint_counter"}

// prepareRequest starts the daemon if need be and makes the entry's
// interface.
func prepareRequest(t *testing.T, r *run) {
	testutil.RequirePrivileged(t)
	requestOnce.Do(func() { sharedDaemon, requestStartup = startRequestDaemon() })
	if requestStartup != nil {
		t.Fatal(requestStartup)
	}
	r.daemon = sharedDaemon
	r.vars["image"] = sharedDaemon.image
	r.vars["image.tag"] = sharedDaemon.imageTag
	r.vars["interface"] = testutil.NewVethPair(t).Host
	sharedDaemon.pins = bpffsTree(t, sharedDaemon.bpffs)
}

func startRequestDaemon() (_ *requestDaemon, err error) {
	c, err := badinput.Locate()
	if err != nil {
		return nil, err
	}
	// Short: a unix socket's path is at most 107 bytes.
	dir, err := os.MkdirTemp("", "bpfd-badreq-")
	if err != nil {
		return nil, err
	}
	d := &requestDaemon{dir: dir, bpffs: filepath.Join(dir, "bpffs"),
		csiSocket: filepath.Join(dir, "csi.sock"), podsDir: filepath.Join(dir, "pods"), stagingDir: filepath.Join(dir, "csi-staging")}
	defer func() {
		if err != nil {
			d.stop()
		}
	}()
	ctx := context.Background()
	var objects []string
	for _, o := range requestObjects {
		objects = append(objects, filepath.Join(c.Bytecode, o+".bpf.o"))
	}
	images := filepath.Join(dir, "images")
	d.imageTag = "oci:" + images + "/corpus:v1"
	if d.image, err = testimage.Build(ctx, d.imageTag, objects...); err != nil {
		return nil, err
	}
	key, err := testimage.NewKey(dir, "corpus")
	if err != nil {
		return nil, err
	}
	if err := key.Sign(ctx, d.image, verify.FormatBundle); err != nil {
		return nil, err
	}
	policy := filepath.Join(dir, "policy.yaml")
	if err := testimage.WritePolicy(policy, testimage.Rule{Name: "corpus", Images: []string{"oci:" + images + "/**"}, Keys: []string{key.PubFile}}); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(d.podsDir, 0o750); err != nil {
		return nil, err
	}
	socket := filepath.Join(dir, "bpfd.sock")
	cfg, err := daemon.ParseConfig(nil, func(cfg *daemon.Config) {
		cfg.Socket.Path = socket
		cfg.StateDir = filepath.Join(dir, "state")
		cfg.BpffsDir = d.bpffs
		cfg.PolicyFile = policy
		cfg.CSI.Enabled, cfg.CSI.NodeName = true, "corpus-node"
		cfg.CSI.Socket, cfg.CSI.PodsDir, cfg.CSI.StagingDir = d.csiSocket, d.podsDir, d.stagingDir
	})
	if err != nil {
		return nil, err
	}
	ctx, d.cancel = context.WithCancel(ctx)
	if d.daemon, err = daemon.New(ctx, cfg, daemon.Options{}); err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	d.served = make(chan error, 1)
	go func() { d.served <- d.daemon.Serve(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-d.served:
		d.served <- err
		return nil, fmt.Errorf("bpfd: %w", err)
	case <-time.After(30 * time.Second):
		return nil, errors.New("bpfd does not serve after 30s")
	}
	if d.conn, err = grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		return nil, err
	}
	d.client = pb.NewBpfdClient(d.conn)
	if err := d.startCSI(); err != nil {
		return nil, err
	}
	return d, nil
}

// stop stops serving, closes the state, unmounts the bpffs and removes the
// directory.
func (d *requestDaemon) stop() error {
	var errs []error
	if d.conn != nil {
		errs = append(errs, d.conn.Close())
	}
	if d.csiConn != nil {
		errs = append(errs, d.csiConn.Close())
	}
	if d.cancel != nil {
		d.cancel()
	}
	if d.served != nil {
		errs = append(errs, <-d.served)
	}
	if d.daemon != nil {
		errs = append(errs, d.daemon.Close())
	}
	if err := syscall.Unmount(d.bpffs, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
		errs = append(errs, fmt.Errorf("unmount %s: %w", d.bpffs, err))
	}
	errs = append(errs, os.RemoveAll(d.dir))
	return errors.Join(errs...)
}

func stopRequestDaemon() error {
	if sharedDaemon == nil {
		return nil
	}
	return sharedDaemon.stop()
}

// requestMessages makes an empty request of each method and sends it.
var requestMessages = map[string]struct {
	new  func() proto.Message
	send func(ctx context.Context, c pb.BpfdClient, m proto.Message) (proto.Message, error)
}{
	"Load": {func() proto.Message { return &pb.LoadRequest{} }, func(ctx context.Context, c pb.BpfdClient, m proto.Message) (proto.Message, error) {
		return c.Load(ctx, m.(*pb.LoadRequest))
	}},
	"Unload": {func() proto.Message { return &pb.UnloadRequest{} }, func(ctx context.Context, c pb.BpfdClient, m proto.Message) (proto.Message, error) {
		return c.Unload(ctx, m.(*pb.UnloadRequest))
	}},
	"Get": {func() proto.Message { return &pb.GetRequest{} }, func(ctx context.Context, c pb.BpfdClient, m proto.Message) (proto.Message, error) {
		return c.Get(ctx, m.(*pb.GetRequest))
	}},
	"List": {func() proto.Message { return &pb.ListRequest{} }, func(ctx context.Context, c pb.BpfdClient, m proto.Message) (proto.Message, error) {
		return c.List(ctx, m.(*pb.ListRequest))
	}},
	"UpdateOwner": {func() proto.Message { return &pb.UpdateOwnerRequest{} }, func(ctx context.Context, c pb.BpfdClient, m proto.Message) (proto.Message, error) {
		return c.UpdateOwner(ctx, m.(*pb.UpdateOwnerRequest))
	}},
	"Inventory": {func() proto.Message { return &pb.InventoryRequest{} }, func(ctx context.Context, c pb.BpfdClient, m proto.Message) (proto.Message, error) {
		return c.Inventory(ctx, m.(*pb.InventoryRequest))
	}},
	// Top's first sample, or the error that ends the stream.
	"Top": {func() proto.Message { return &pb.TopRequest{} }, func(ctx context.Context, c pb.BpfdClient, m proto.Message) (proto.Message, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.Top(ctx, m.(*pb.TopRequest))
		if err != nil {
			return nil, err
		}
		return stream.Recv()
	}},
	// Events' first response, or the error that ends the stream.
	"Events": {func() proto.Message { return &pb.EventsRequest{} }, func(ctx context.Context, c pb.BpfdClient, m proto.Message) (proto.Message, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.Events(ctx, m.(*pb.EventsRequest))
		if err != nil {
			return nil, err
		}
		return stream.Recv()
	}},
	"MapDump": {func() proto.Message { return &pb.MapDumpRequest{} }, func(ctx context.Context, c pb.BpfdClient, m proto.Message) (proto.Message, error) {
		return c.MapDump(ctx, m.(*pb.MapDumpRequest))
	}},
	"MapGet": {func() proto.Message { return &pb.MapGetRequest{} }, func(ctx context.Context, c pb.BpfdClient, m proto.Message) (proto.Message, error) {
		return c.MapGet(ctx, m.(*pb.MapGetRequest))
	}},
	"MapUpdate": {func() proto.Message { return &pb.MapUpdateRequest{} }, func(ctx context.Context, c pb.BpfdClient, m proto.Message) (proto.Message, error) {
		return c.MapUpdate(ctx, m.(*pb.MapUpdateRequest))
	}},
	"MapDelete": {func() proto.Message { return &pb.MapDeleteRequest{} }, func(ctx context.Context, c pb.BpfdClient, m proto.Message) (proto.Message, error) {
		return c.MapDelete(ctx, m.(*pb.MapDeleteRequest))
	}},
}

// sendRequest expands the entry's file, decodes it strictly (an unknown
// field is a mistake in the corpus, not a test of the daemon) and sends it.
// It returns the status error; a control's loaded programs are noted for
// requestLeftovers to unload.
func sendRequest(ctx context.Context, r *run) error {
	m, ok := requestMessages[r.entry.RPC]
	if !ok {
		return fmt.Errorf("rpc %q: no such method", r.entry.RPC)
	}
	raw, err := os.ReadFile(r.entry.FilePaths()[0])
	if err != nil {
		return err
	}
	tmpl, err := r.entry.Template(r.vars)
	if err != nil {
		return err
	}
	data, err := tmpl.Expand(raw)
	if err != nil {
		return fmt.Errorf("corpus: %s: %w", r.entry.Files[0], err)
	}
	req := m.new()
	if err := protojson.Unmarshal(data, req); err != nil {
		return fmt.Errorf("corpus: %s: %w", r.entry.Files[0], err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := m.send(ctx, r.daemon.client, req)
	if lr, ok := resp.(*pb.LoadResponse); ok {
		for _, p := range lr.GetPrograms() {
			r.daemon.loaded = append(r.daemon.loaded, p.GetId())
		}
	}
	return err
}

func hasCode(c codes.Code) func(error) bool {
	return func(err error) bool { return status.Code(err) == c }
}

// errorInfoReason returns the ErrorInfo reason of a status error, without
// its ERROR_REASON_ prefix.
func errorInfoReason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return strings.TrimPrefix(info.GetReason(), "ERROR_REASON_")
		}
	}
	return ""
}

// requestLeftovers unloads what a control loaded, then checks that the
// daemon manages no program, its bpffs holds what it held before the entry
// and the entry's interface runs no XDP program.
func requestLeftovers(t *testing.T, r *run) {
	t.Helper()
	if r.daemon == nil {
		return
	}
	ctx := t.Context()
	if ids := r.daemon.loaded; len(ids) > 0 {
		r.daemon.loaded = nil
		if _, err := r.daemon.client.Unload(ctx, &pb.UnloadRequest{Ids: ids}); err != nil {
			t.Fatalf("unload the control's programs %v: %v", ids, err)
		}
	}
	list, err := r.daemon.client.List(ctx, &pb.ListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.GetPrograms() {
		t.Errorf("program %d (%s) is loaded after the entry", p.GetId(), p.GetName())
	}
	if diff := cmp.Diff(r.daemon.pins, bpffsTree(t, r.daemon.bpffs)); diff != "" {
		t.Errorf("bpffs %s changed (-before +after):\n%s", r.daemon.bpffs, diff)
	}
	link, err := netlink.LinkByName(r.vars["interface"])
	if err != nil {
		t.Fatal(err)
	}
	if x := link.Attrs().Xdp; x != nil && x.ProgId != 0 {
		t.Errorf("%s runs XDP program %d after the entry", r.vars["interface"], x.ProgId)
	}
}

// bpffsTree lists the paths under the daemon's bpffs.
func bpffsTree(t *testing.T, dir string) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, strings.TrimPrefix(path, dir))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}
