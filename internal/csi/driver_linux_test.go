package csi_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/bpfd-dev/bpfd/internal/csi"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

func TestMain(m *testing.M) { testutil.LeakCheckMain(m) }

const (
	// fsGroup is the test pods' securityContext.fsGroup.
	fsGroup = 2000
	// udp is the index of UDP packets in xdp_counter's map.
	udp = uint32(17)
	// config is the config whose programs count the veth's packets.
	config = "xdp-counter"
)

// node is bpfd's state on a node as the driver sees it: a bpffs of mode
// 0700 like bpfd's with xdp_counter (program 1 of config xdp-counter,
// counting the packets arriving on a veth, with a program array of its own)
// and program 2 of config other, its map holding a secret; and the
// driver, served on a unix socket, with its kubelet pods directory.
type node struct {
	bpffs, podsDir, staging string
	veth                    *testutil.VethPair
	stats, jumps, secret    *ebpf.Map
	programs                []csi.Program
	sock                    string
	client                  csipb.NodeClient
	identity                csipb.IdentityClient
}

func newNode(t *testing.T) *node {
	t.Helper()
	testutil.RequirePrivileged(t)
	testutil.AllowUnprivilegedMapAccess(t)
	n := &node{}
	n.bpffs = t.TempDir()
	if err := unix.Mount("bpffs", n.bpffs, "bpf", 0, "mode=0700"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(n.bpffs, unix.MNT_DETACH) })

	spec, err := ebpf.LoadCollectionSpec("../../bytecode/xdp_counter.bpf.o")
	if err != nil {
		t.Fatal(err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { coll.Close() })
	n.veth = testutil.NewVethPair(t)
	iface, err := netlink.LinkByName(n.veth.Host)
	if err != nil {
		t.Fatal(err)
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: coll.Programs["xdp_counter"], Interface: iface.Attrs().Index, Flags: link.XDPGenericMode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	n.stats = coll.Maps["xdp_stats"]
	n.jumps = newMap(t, &ebpf.MapSpec{Name: "jumps", Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 4})
	n.secret = newMap(t, &ebpf.MapSpec{Name: "secret", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err := n.secret.Put(uint32(0), uint64(0x5ec7e7)); err != nil {
		t.Fatal(err)
	}
	n.programs = []csi.Program{
		{ID: 1, Config: config, ReaderNamespaces: []string{"apps", "monitoring"}, Maps: []csi.Map{
			n.pin(t, 1, "xdp_stats", n.stats), n.pin(t, 1, "jumps", n.jumps),
		}},
		{ID: 2, Config: "other", ReaderNamespaces: []string{"apps"}, Maps: []csi.Map{n.pin(t, 2, "secret", n.secret)}},
	}
	if err := coll.Programs["xdp_counter"].Pin(filepath.Join(n.bpffs, "1", "program")); err != nil {
		t.Fatal(err)
	}

	// The kubelet's pods directory, searchable by everyone, as the
	// container runtime would make the volume visible to the pod.
	root, err := os.MkdirTemp("", "bpfd-csi-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	n.podsDir = filepath.Join(root, "pods")
	n.staging = filepath.Join(root, "staging")
	d, err := csi.New(n, csi.Options{NodeID: "node-1", PodsDir: n.podsDir, StagingDir: n.staging, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var conn *grpc.ClientConn
	n.sock, conn = serve(t, d)
	n.client, n.identity = csipb.NewNodeClient(conn), csipb.NewIdentityClient(conn)
	return n
}

// LoadedPrograms is the node's Programs.
func (n *node) LoadedPrograms(context.Context) ([]csi.Program, error) {
	return slices.Clone(n.programs), nil
}

func newMap(t *testing.T, spec *ebpf.MapSpec) *ebpf.Map {
	t.Helper()
	m, err := ebpf.NewMap(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// pin pins m as bpfd pins a program's map.
func (n *node) pin(t *testing.T, id int, name string, m *ebpf.Map) csi.Map {
	t.Helper()
	path := filepath.Join(n.bpffs, strconv.Itoa(id), "maps", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := m.Pin(path); err != nil {
		t.Fatal(err)
	}
	info, err := m.Info()
	if err != nil {
		t.Fatal(err)
	}
	mid, _ := info.ID()
	return csi.Map{Name: name, ID: uint32(mid), PinPath: path}
}

// serve serves the driver on a unix socket and returns its path and a
// connection to it.
func serve(t *testing.T, d *csi.Driver) (string, *grpc.ClientConn) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "csi.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	d.Register(s)
	go s.Serve(l)
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return sock, conn
}

// pod is a pod on the node: its namespace, name and uid, and the target
// path of its CSI volume "maps".
type pod struct {
	namespace, name, uid, target string
}

func (n *node) newPod(t *testing.T, namespace string) pod {
	t.Helper()
	p := pod{namespace: namespace, name: "reader-" + testutil.RandomSuffix(5), uid: newUID()}
	dir := filepath.Join(n.podsDir, p.uid, "volumes", "kubernetes.io~csi", "maps")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for d := dir; d != n.podsDir; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	os.Chmod(n.podsDir, 0o755)
	p.target = filepath.Join(dir, "mount")
	return p
}

func newUID() string {
	h := testutil.RandomSuffix(32)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-8" + h[17:20] + "-" + h[20:32]
}

// publishRequest is the kubelet's request for the pod's volume with attrs.
func (p pod) publishRequest(attrs map[string]string) *csipb.NodePublishVolumeRequest {
	ctx := map[string]string{
		csi.PodNamespaceKey: p.namespace, csi.PodNameKey: p.name, csi.PodUIDKey: p.uid, csi.EphemeralKey: "true",
		"csi.storage.k8s.io/serviceAccount.name": "default",
	}
	for k, v := range attrs {
		ctx[k] = v
	}
	return &csipb.NodePublishVolumeRequest{
		VolumeId:   "csi-" + p.uid,
		TargetPath: p.target,
		VolumeCapability: &csipb.VolumeCapability{
			AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{VolumeMountGroup: "2000"}},
			AccessMode: &csipb.VolumeCapability_AccessMode{Mode: csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		},
		VolumeContext: ctx,
	}
}

func (n *node) publish(t *testing.T, req *csipb.NodePublishVolumeRequest) error {
	t.Helper()
	_, err := n.client.NodePublishVolume(context.Background(), req)
	if err == nil {
		t.Cleanup(func() { n.unpublish(t, req.TargetPath) })
	}
	return err
}

func (n *node) unpublish(t *testing.T, target string) {
	t.Helper()
	if _, err := n.client.NodeUnpublishVolume(context.Background(), &csipb.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: target}); err != nil {
		t.Errorf("unpublish %s: %v", target, err)
	}
}

// TestUnprivilegedReaderThroughTheDriver publishes xdp-counter's counters
// into a pod's volume; an unprivileged process reads them rising while
// packets flow through the veth, and reaches nothing else.
func TestUnprivilegedReaderThroughTheDriver(t *testing.T) {
	n := newNode(t)
	p := n.newPod(t, "apps")
	if err := n.publish(t, p.publishRequest(map[string]string{csi.AttrConfig: config, csi.AttrMaps: "xdp_stats"})); err != nil {
		t.Fatalf("publish: %v", err)
	}
	r := testutil.StartMapReader(t, []uint32{fsGroup}, p.target)
	if err := r.Open(t, "xdp_stats"); err != nil {
		t.Fatalf("the reader opens xdp_stats: %v", err)
	}
	read := func() uint64 {
		t.Helper()
		v, err := r.Read(t, udp)
		if err != nil {
			t.Fatalf("read the UDP counter: %v", err)
		}
		return v
	}
	for round := range 3 {
		before := read()
		n.veth.SendUDPFromPeer(t, 10)
		waitFor(t, func() bool { return read() >= before+10 }, "round %d: the reader's counter at %d, want %d", round, read(), before+10)
	}
	t.Logf("the unprivileged reader counted %d UDP packets", read())
	n.checkBpfdPins(t)

	t.Run("the volume holds exactly the map asked for", func(t *testing.T) {
		if names, err := r.Names(t); err != nil || !slices.Equal(names, []string{"xdp_stats"}) {
			t.Errorf("the volume holds %v (%v), want [xdp_stats]", names, err)
		}
		if !r.ReadOnly(t) {
			t.Error("the volume is not read-only")
		}
	})
	t.Run("writes are refused", func(t *testing.T) {
		if err := r.Write(t, udp, 0); !isKind(err, "EPERM") {
			t.Errorf("write: %v, want EPERM", err)
		}
		if v := read(); v == 0 {
			t.Error("the counter was reset")
		}
	})
	t.Run("a map it was not given is refused", func(t *testing.T) {
		if err := r.Open(t, "jumps"); !isKind(err, "not-found") {
			t.Errorf("open jumps: %v, want not found", err)
		}
		if err := r.Open(t, "secret"); !isKind(err, "not-found") {
			t.Errorf("open another config's map: %v, want not found", err)
		}
	})
	t.Run("nothing under bpfd's bpffs opens", func(t *testing.T) {
		for _, path := range []string{n.programs[0].Maps[0].PinPath, n.programs[0].Maps[1].PinPath, n.programs[1].Maps[0].PinPath, filepath.Join(n.bpffs, "1", "program")} {
			if err := r.OpenPin(t, path); !isKind(err, "EACCES") {
				t.Errorf("open %s: %v, want EACCES", path, err)
			}
		}
	})
	t.Run("no program loads, no map is created", func(t *testing.T) {
		if err := r.LoadProgram(t); !isKind(err, "EPERM") {
			t.Errorf("load a program: %v, want EPERM", err)
		}
		if err := r.CreateMap(t); !isKind(err, "EPERM") {
			t.Errorf("create a map: %v, want EPERM", err)
		}
	})
	t.Run("a process outside the pod's fsGroup is refused", func(t *testing.T) {
		other := testutil.StartMapReader(t, []uint32{fsGroup + 1}, p.target)
		if err := other.Open(t, "xdp_stats"); !isKind(err, "EACCES") {
			t.Errorf("open xdp_stats in another group: %v, want EACCES", err)
		}
	})
}

func isKind(err error, kind string) bool {
	var re *testutil.ReaderError
	return errors.As(err, &re) && re.Kind == kind
}

func waitFor(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf(format, args...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWritableVolume: a pod that asks for write access writes the map,
// unless the volume's readonly flag says otherwise.
func TestWritableVolume(t *testing.T) {
	n := newNode(t)
	p := n.newPod(t, "monitoring")
	if err := n.publish(t, p.publishRequest(map[string]string{csi.AttrConfig: config, csi.AttrReadOnly: "false"})); err != nil {
		t.Fatalf("publish: %v", err)
	}
	r := testutil.StartMapReader(t, []uint32{fsGroup}, p.target)
	if err := r.Open(t, "xdp_stats"); err != nil {
		t.Fatal(err)
	}
	if r.ReadOnly(t) {
		t.Error("a writable volume says it is read-only")
	}
	if err := r.Write(t, 200, 7); err != nil {
		t.Fatalf("write: %v", err)
	}
	var v uint64
	if err := n.stats.Lookup(uint32(200), &v); err != nil || v != 7 {
		t.Errorf("xdp_stats[200] = %d (%v), want 7", v, err)
	}
	// Every map of the config was asked for: the program array is left out.
	if names, err := r.Names(t); err != nil || !slices.Equal(names, []string{"xdp_stats"}) {
		t.Errorf("the volume holds %v (%v), want [xdp_stats]", names, err)
	}

	ro := n.newPod(t, "monitoring")
	req := ro.publishRequest(map[string]string{csi.AttrConfig: config, csi.AttrReadOnly: "false"})
	req.Readonly = true
	if err := n.publish(t, req); err != nil {
		t.Fatalf("publish: %v", err)
	}
	r = testutil.StartMapReader(t, []uint32{fsGroup}, ro.target)
	if err := r.Open(t, "xdp_stats"); err != nil {
		t.Fatal(err)
	}
	if err := r.Write(t, 200, 8); !isKind(err, "EPERM") {
		t.Errorf("write through a volume whose readonly flag is set: %v, want EPERM", err)
	}
}

// TestRefusals sends the requests the driver refuses: each fails with its
// code and a message naming the cause, and leaves nothing mounted,
// pinned or made.
func TestRefusals(t *testing.T) {
	n := newNode(t)
	cases := map[string]struct {
		namespace string
		attrs     map[string]string
		edit      func(*csipb.NodePublishVolumeRequest)
		code      codes.Code
		msg       string
	}{
		"a namespace the config does not admit": {"web", map[string]string{csi.AttrConfig: config}, nil, codes.PermissionDenied,
			"config xdp-counter does not admit pods of namespace web to its maps (its spec.mapReaderNamespaces: apps, monitoring)"},
		"an unknown config": {"apps", map[string]string{csi.AttrConfig: "no-such-config"}, nil, codes.NotFound,
			"config no-such-config: not found: no program of it is loaded on this node"},
		"a map the config lacks": {"apps", map[string]string{csi.AttrConfig: config, csi.AttrMaps: "xdp_stats,nope"}, nil, codes.NotFound,
			"config xdp-counter: not found: no map nope (its maps: jumps, xdp_stats)"},
		"another config's map": {"apps", map[string]string{csi.AttrConfig: config, csi.AttrMaps: "secret"}, nil, codes.NotFound, "no map secret"},
		"a program array":      {"apps", map[string]string{csi.AttrConfig: config, csi.AttrMaps: "jumps"}, nil, codes.PermissionDenied, "a ProgramArray holds programs or maps"},
		"a target outside the pods directory": {"apps", map[string]string{csi.AttrConfig: config},
			func(r *csipb.NodePublishVolumeRequest) { r.TargetPath = filepath.Join(n.staging, "x", "mount") }, codes.InvalidArgument, "under the kubelet's pods directory"},
		"no pod info": {"apps", map[string]string{csi.AttrConfig: config},
			func(r *csipb.NodePublishVolumeRequest) { r.VolumeContext = map[string]string{csi.AttrConfig: config} }, codes.InvalidArgument, "podInfoOnMount: true"},
		"pod info naming an admitted namespace, for another pod's volume": {"web", map[string]string{csi.AttrConfig: config},
			func(r *csipb.NodePublishVolumeRequest) {
				r.VolumeContext[csi.PodNamespaceKey] = "apps"
				r.VolumeContext[csi.PodUIDKey] = newUID()
			}, codes.InvalidArgument, "not of pod"},
		"no fsGroup": {"apps", map[string]string{csi.AttrConfig: config},
			func(r *csipb.NodePublishVolumeRequest) { r.VolumeCapability.GetMount().VolumeMountGroup = "" }, codes.InvalidArgument, "securityContext.fsGroup"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := n.newPod(t, tc.namespace)
			req := p.publishRequest(tc.attrs)
			if tc.edit != nil {
				tc.edit(req)
			}
			err := n.publish(t, req)
			if st := status.Convert(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
				t.Fatalf("publish: %v, want %s naming %q", err, tc.code, tc.msg)
			}
			t.Logf("%s: %s", status.Code(err), status.Convert(err).Message())
			n.checkNothingLeft(t, p)
		})
	}
}

// checkNothingLeft checks that no mount is left under the pods and staging
// directories, the staging directory is empty and the pod's target does
// not exist.
func (n *node) checkNothingLeft(t *testing.T, p pod) {
	t.Helper()
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (strings.HasPrefix(f[4], n.podsDir+"/") || strings.HasPrefix(f[4], n.staging+"/")) {
			t.Errorf("left mounted: %s", f[4])
		}
	}
	if entries, err := os.ReadDir(n.staging); err != nil || len(entries) > 0 {
		t.Errorf("staging directory: %v, %v; want it empty", entries, err)
	}
	if _, err := os.Lstat(p.target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("target %s: %v, want it absent", p.target, err)
	}
}

// TestIdempotence: the kubelet repeats publish and unpublish; a publish of
// other parameters at a published target is refused.
func TestIdempotence(t *testing.T) {
	n := newNode(t)
	p := n.newPod(t, "apps")
	req := p.publishRequest(map[string]string{csi.AttrConfig: config, csi.AttrMaps: "xdp_stats"})
	for i := range 3 {
		if err := n.publish(t, req); err != nil {
			t.Fatalf("publish #%d: %v", i+1, err)
		}
	}
	if got := mountsAt(t, p.target); got != 1 {
		t.Errorf("%d mounts at the target after three publishes, want 1", got)
	}
	other := p.publishRequest(map[string]string{csi.AttrConfig: config, csi.AttrMaps: "xdp_stats", csi.AttrReadOnly: "false"})
	if err := n.publish(t, other); status.Code(err) != codes.AlreadyExists {
		t.Errorf("publish of a writable volume at a read-only one's target: %v, want AlreadyExists", err)
	}
	group := p.publishRequest(map[string]string{csi.AttrConfig: config, csi.AttrMaps: "xdp_stats"})
	group.VolumeCapability.GetMount().VolumeMountGroup = "3000"
	if err := n.publish(t, group); status.Code(err) != codes.AlreadyExists {
		t.Errorf("publish for another group at a published target: %v, want AlreadyExists", err)
	}
	for i := range 3 {
		if _, err := n.client.NodeUnpublishVolume(context.Background(), &csipb.NodeUnpublishVolumeRequest{VolumeId: req.VolumeId, TargetPath: p.target}); err != nil {
			t.Fatalf("unpublish #%d: %v", i+1, err)
		}
	}
	n.checkNothingLeft(t, p)
	n.checkBpfdPins(t)

	// A target that holds another file system is not the driver's to take
	// away.
	q := n.newPod(t, "apps")
	if err := os.Mkdir(q.target, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", q.target, "tmpfs", 0, "size=16k"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(q.target, unix.MNT_DETACH)
	_, err := n.client.NodeUnpublishVolume(context.Background(), &csipb.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: q.target})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("unpublish of a tmpfs: %v, want FailedPrecondition", err)
	}
	if got := mountsAt(t, q.target); got != 1 {
		t.Errorf("the tmpfs at the target: %d mounts, want 1", got)
	}
}

// checkBpfdPins checks that bpfd's pins are where they were, holding the
// maps bpfd recorded: publishing clones them and never moves them.
func (n *node) checkBpfdPins(t *testing.T) {
	t.Helper()
	for _, p := range n.programs {
		for _, rec := range p.Maps {
			m, err := ebpf.LoadPinnedMap(rec.PinPath, &ebpf.LoadPinOptions{ReadOnly: true})
			if err != nil {
				t.Errorf("bpfd's pin %s: %v", rec.PinPath, err)
				continue
			}
			info, err := m.Info()
			m.Close()
			if err != nil {
				t.Fatal(err)
			}
			if id, _ := info.ID(); uint32(id) != rec.ID {
				t.Errorf("bpfd's pin %s holds map %d, want %d", rec.PinPath, id, rec.ID)
			}
		}
	}
}

// mountsAt counts the mounts at path.
func mountsAt(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			n++
		}
	}
	return n
}

// TestSwappedPin: a pin of bpfd's that holds another map than bpfd
// recorded is refused, and nothing is published.
func TestSwappedPin(t *testing.T) {
	n := newNode(t)
	n.programs[0].Maps[0].ID++ // bpfd's record names another map than its pin holds
	p := n.newPod(t, "apps")
	err := n.publish(t, p.publishRequest(map[string]string{csi.AttrConfig: config, csi.AttrMaps: "xdp_stats"}))
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("publish: %v, want FailedPrecondition", err)
	}
	n.checkNothingLeft(t, p)
}

func TestIdentityAndNodeInfo(t *testing.T) {
	n := newNode(t)
	ctx := context.Background()
	info, err := n.identity.GetPluginInfo(ctx, &csipb.GetPluginInfoRequest{})
	if err != nil || info.GetName() != "csi.bpfd.io" || info.GetVendorVersion() != "test" {
		t.Errorf("GetPluginInfo: %v, %v", info, err)
	}
	ni, err := n.client.NodeGetInfo(ctx, &csipb.NodeGetInfoRequest{})
	if err != nil || ni.GetNodeId() != "node-1" {
		t.Errorf("NodeGetInfo: %v, %v", ni, err)
	}
	caps, err := n.client.NodeGetCapabilities(ctx, &csipb.NodeGetCapabilitiesRequest{})
	if err != nil || len(caps.GetCapabilities()) != 1 || caps.GetCapabilities()[0].GetRpc().GetType() != csipb.NodeServiceCapability_RPC_VOLUME_MOUNT_GROUP {
		t.Errorf("NodeGetCapabilities: %v, %v; want VOLUME_MOUNT_GROUP only", caps, err)
	}
}

// TestTenantConfigVolumes: tenant team-a's BpfTenantProgramConfig is named
// like the cluster's xdp-counter and has maps of its own, one named like
// the cluster config's. The cluster config's volume is as before; the
// tenant's maps go into pods of team-a asking for tenantConfig only, and a
// pod of another namespace asking for that name gets none of them.
func TestTenantConfigVolumes(t *testing.T) {
	n := newNode(t)
	const key, tenantValue, clusterValue = uint32(201), uint64(0x7e7a), uint64(1)
	tenantStats := newMap(t, &ebpf.MapSpec{Name: "xdp_stats", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 256})
	tenantSecret := newMap(t, &ebpf.MapSpec{Name: "tenant_secret", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 256})
	for _, w := range []struct {
		m *ebpf.Map
		v uint64
	}{{tenantStats, tenantValue}, {tenantSecret, tenantValue}, {n.stats, clusterValue}} {
		if err := w.m.Put(key, w.v); err != nil {
			t.Fatal(err)
		}
	}
	// The tenant's program admits no namespace (the agent sets none for a
	// tenant); it still may not widen its namespace when it does.
	n.programs = append(n.programs, csi.Program{ID: 3, Config: config, Namespace: "team-a", ReaderNamespaces: []string{"apps", "team-b"},
		Maps: []csi.Map{n.pin(t, 3, "xdp_stats", tenantStats), n.pin(t, 3, "tenant_secret", tenantSecret)}})

	t.Run("the cluster config's volume holds the cluster config's maps", func(t *testing.T) {
		p := n.newPod(t, "apps")
		if err := n.publish(t, p.publishRequest(map[string]string{csi.AttrConfig: config})); err != nil {
			t.Fatalf("publish: %v", err)
		}
		r := testutil.StartMapReader(t, []uint32{fsGroup}, p.target)
		if names, err := r.Names(t); err != nil || !slices.Equal(names, []string{"xdp_stats"}) {
			t.Errorf("the volume holds %v (%v), want [xdp_stats]", names, err)
		}
		if err := r.Open(t, "xdp_stats"); err != nil {
			t.Fatal(err)
		}
		if v, err := r.Read(t, key); err != nil || v != clusterValue {
			t.Errorf("xdp_stats[%d] = %#x (%v), want the cluster map's %#x", key, v, err, clusterValue)
		}
	})
	t.Run("a tenant pod mounts its tenant config's maps", func(t *testing.T) {
		p := n.newPod(t, "team-a")
		if err := n.publish(t, p.publishRequest(map[string]string{csi.AttrTenantConfig: config})); err != nil {
			t.Fatalf("publish: %v", err)
		}
		r := testutil.StartMapReader(t, []uint32{fsGroup}, p.target)
		if names, err := r.Names(t); err != nil || !slices.Equal(names, []string{"tenant_secret", "xdp_stats"}) {
			t.Errorf("the volume holds %v (%v), want [tenant_secret xdp_stats]", names, err)
		}
		if err := r.Open(t, "xdp_stats"); err != nil {
			t.Fatal(err)
		}
		if v, err := r.Read(t, key); err != nil || v != tenantValue {
			t.Errorf("xdp_stats[%d] = %#x (%v), want the tenant map's %#x", key, v, err, tenantValue)
		}
		if err := r.Write(t, key, 0); !isKind(err, "EPERM") {
			t.Errorf("write through a read-only tenant volume: %v, want EPERM", err)
		}
	})
	t.Run("a tenant pod asking for write access writes", func(t *testing.T) {
		p := n.newPod(t, "team-a")
		if err := n.publish(t, p.publishRequest(map[string]string{csi.AttrTenantConfig: config, csi.AttrMaps: "tenant_secret", csi.AttrReadOnly: "false"})); err != nil {
			t.Fatalf("publish: %v", err)
		}
		r := testutil.StartMapReader(t, []uint32{fsGroup}, p.target)
		if err := r.Open(t, "tenant_secret"); err != nil {
			t.Fatal(err)
		}
		if err := r.Write(t, key+1, 9); err != nil {
			t.Fatalf("write: %v", err)
		}
		var v uint64
		if err := tenantSecret.Lookup(key+1, &v); err != nil || v != 9 {
			t.Errorf("tenant_secret[%d] = %d (%v), want 9", key+1, v, err)
		}
	})

	cases := map[string]struct {
		namespace string
		attrs     map[string]string
		code      codes.Code
		msg       string
	}{
		"a pod of another tenant asking for team-a's config name": {"team-b", map[string]string{csi.AttrTenantConfig: config}, codes.NotFound,
			"tenant config xdp-counter of namespace team-b: not found: no program of it is loaded on this node"},
		"a pod of a namespace the tenant's program admits": {"apps", map[string]string{csi.AttrTenantConfig: config}, codes.NotFound,
			"tenant config xdp-counter of namespace apps: not found"},
		"a volume attribute naming the tenant's namespace": {"team-b", map[string]string{csi.AttrTenantConfig: config, "namespace": "team-a"}, codes.InvalidArgument,
			`unknown volume attribute "namespace"`},
		"a tenant pod asking for the cluster config": {"team-a", map[string]string{csi.AttrConfig: config}, codes.PermissionDenied,
			"config xdp-counter does not admit pods of namespace team-a to its maps (its spec.mapReaderNamespaces: apps, monitoring)"},
		"a tenant pod asking for a map of the cluster config's only": {"team-a", map[string]string{csi.AttrTenantConfig: config, csi.AttrMaps: "jumps"}, codes.NotFound,
			"tenant config xdp-counter of namespace team-a: not found: no map jumps (its maps: tenant_secret, xdp_stats)"},
		"a cluster volume asking for the tenant's map": {"apps", map[string]string{csi.AttrConfig: config, csi.AttrMaps: "tenant_secret"}, codes.NotFound,
			"config xdp-counter: not found: no map tenant_secret (its maps: jumps, xdp_stats)"},
		"config and tenantConfig both": {"team-a", map[string]string{csi.AttrConfig: config, csi.AttrTenantConfig: config}, codes.InvalidArgument,
			"volume attributes config and tenantConfig both set"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := n.newPod(t, tc.namespace)
			err := n.publish(t, p.publishRequest(tc.attrs))
			if st := status.Convert(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
				t.Fatalf("publish: %v, want %s naming %q", err, tc.code, tc.msg)
			}
			t.Logf("%s: %s", status.Code(err), status.Convert(err).Message())
			n.checkNothingLeft(t, p)
		})
	}
	n.checkBpfdPins(t)
}
