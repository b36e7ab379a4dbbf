package daemon

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"

	"github.com/bpfd-dev/bpfd/internal/testing/testimage"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/verify"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// TestLoadFaults sends bad requests and requests that fail at each step of
// a load. Each gets its status code and a message naming the thing at
// fault, writes an audit line, and leaves nothing behind: no pin, record or
// descriptor; the daemon keeps serving.
func TestLoadFaults(t *testing.T) {
	td := newTestDaemon(t)
	v := testutil.NewVethPair(t)
	restrictedDir := filepath.Join(td.images, "restricted")
	td.writePolicy(t, policyRule{Name: "tracing-only", Images: []string{"oci:" + restrictedDir}, Keys: []string{td.key.pub}, Kinds: []string{"tracepoint"}})
	if err := td.d.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}

	xdp := td.image(t, "xdp", true, "xdp_counter.bpf.o")
	verdict := td.image(t, "verdict", true, "xdp_verdict.bpf.o")
	tc := td.image(t, "tc", true, "tc_counter.bpf.o")
	tp := td.image(t, "tracepoint", true, "tracepoint_counter.bpf.o")
	uprobe := td.image(t, "uprobe", true, "uprobe_counter.bpf.o")
	unsigned := td.image(t, "unsigned", false, "cgroup_counter.bpf.o")
	rejected := td.image(t, "rejected", true, filepath.Join(bytecodeDir, "..", "pkg", "runtime", "testdata", "verifier_reject.bpf.o"))
	restricted := buildArtifact(t, "oci:"+restrictedDir+":v1", "xdp_counter.bpf.o")
	td.key.sign(t, restricted, verify.FormatBundle)
	tampered := td.image(t, "tampered", true, "packet_counters.bpf.o")
	tamperedDir := filepath.Join(td.images, "tampered")
	testimage.Damage(t, tamperedDir, testimage.ReadManifest(t, tamperedDir, rootOf(t, tampered)).Layers[0].Digest)
	notCached := strings.SplitN(tp, "@", 2)[0] + "@sha256:" + strings.Repeat("ab", 32)
	foreignXDP(t, v.Host)

	peer := func(p *pb.XdpAttach) *pb.LoadProgram {
		if p.Interface == "" {
			p.Interface, p.Netns = v.Peer, v.Netns
		}
		return &pb.LoadProgram{Name: "xdp_counter", Type: pb.ProgramType_PROGRAM_TYPE_XDP, Attach: &pb.AttachSpec{Spec: &pb.AttachSpec_Xdp{Xdp: p}}}
	}
	uprobeAt := func(target string) *pb.LoadProgram {
		return &pb.LoadProgram{Name: "uprobe_counter", Type: pb.ProgramType_PROGRAM_TYPE_UPROBE, Attach: &pb.AttachSpec{Spec: &pb.AttachSpec_Uprobe{Uprobe: &pb.UprobeAttach{Target: target, Offset: 16}}}}
	}
	load := func(ref string, progs ...*pb.LoadProgram) *pb.LoadRequest {
		return &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: ref}, Programs: progs}
	}

	cases := map[string]struct {
		req   *pb.LoadRequest
		code  codes.Code
		parts []string
	}{
		"no bytecode":                 {&pb.LoadRequest{Programs: []*pb.LoadProgram{peer(&pb.XdpAttach{})}}, codes.InvalidArgument, []string{"bytecode: missing"}},
		"no reference":                {load("", peer(&pb.XdpAttach{})), codes.InvalidArgument, []string{"bytecode.reference: missing"}},
		"bad reference":               {load("no-host-here", peer(&pb.XdpAttach{})), codes.InvalidArgument, []string{"no-host-here"}},
		"no programs":                 {load(xdp), codes.InvalidArgument, []string{"programs: none"}},
		"no program name":             {load(xdp, &pb.LoadProgram{Type: pb.ProgramType_PROGRAM_TYPE_XDP}), codes.InvalidArgument, []string{"programs[0].name: missing"}},
		"no program type":             {load(xdp, &pb.LoadProgram{Name: "xdp_counter"}), codes.InvalidArgument, []string{"programs[0] (xdp_counter).type: unspecified"}},
		"no attach spec":              {load(xdp, &pb.LoadProgram{Name: "xdp_counter", Type: pb.ProgramType_PROGRAM_TYPE_XDP}), codes.InvalidArgument, []string{"programs[0] (xdp_counter).attach: missing: xdp programs need the xdp spec"}},
		"attach spec of another type": {load(xdp, &pb.LoadProgram{Name: "xdp_counter", Type: pb.ProgramType_PROGRAM_TYPE_XDP, Attach: tcProg("x", v.Peer, v.Netns, pb.Direction_DIRECTION_INGRESS).Attach}), codes.InvalidArgument, []string{"a tc spec does not attach xdp programs"}},
		"unknown program":             {load(xdp, &pb.LoadProgram{Name: "nope", Type: pb.ProgramType_PROGRAM_TYPE_XDP, Attach: peer(&pb.XdpAttach{}).Attach}), codes.NotFound, []string{"program nope", "xdp_counter"}},
		"type the program is not":     {load(xdp, tcProg("xdp_counter", v.Peer, v.Netns, pb.Direction_DIRECTION_INGRESS)), codes.InvalidArgument, []string{"program xdp_counter: is of kind xdp"}},
		"program requested twice":     {load(xdp, peer(&pb.XdpAttach{}), peer(&pb.XdpAttach{})), codes.InvalidArgument, []string{"requested twice"}},
		"missing interface":           {load(xdp, peer(&pb.XdpAttach{Interface: "bpfdnope0", Netns: v.Netns})), codes.NotFound, []string{"interface bpfdnope0"}},
		"missing netns":               {load(xdp, peer(&pb.XdpAttach{Interface: v.Peer, Netns: "/run/netns/bpfd-no-such-ns"})), codes.NotFound, []string{"netns /run/netns/bpfd-no-such-ns"}},
		"missing tracepoint":          {load(tp, tracepointProg("tracepoint_counter", "syscalls/sys_enter_nope")), codes.NotFound, []string{"syscalls/sys_enter_nope"}},
		"missing uprobe binary":       {load(uprobe, uprobeAt("/nonexistent/binary")), codes.NotFound, []string{"/nonexistent/binary"}},
		"missing direction":           {load(tc, tcProg("tc_counter", v.Peer, v.Netns, pb.Direction_DIRECTION_UNSPECIFIED)), codes.InvalidArgument, []string{"direction: unspecified"}},
		"priority out of range":       {load(xdp, peer(&pb.XdpAttach{Priority: 1001})), codes.InvalidArgument, []string{"priority 1001: out of range 1-1000"}},
		"unknown proceed-on value": {load(xdp, peer(&pb.XdpAttach{ProceedOn: []pb.XdpAction{pb.XdpAction_XDP_ACTION_PASS, 42}})), codes.InvalidArgument,
			[]string{"proceed_on[1]: unknown or unspecified value 42"}},
		"interface run by another loader": {load(xdp, peer(&pb.XdpAttach{Interface: v.Host})), codes.AlreadyExists, []string{v.Host}},
		"global of the wrong size": {&pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: verdict}, Programs: []*pb.LoadProgram{{Name: "xdp_verdict", Type: pb.ProgramType_PROGRAM_TYPE_XDP, Attach: peer(&pb.XdpAttach{}).Attach}},
			GlobalData: map[string][]byte{"verdict": {1, 0}}}, codes.InvalidArgument, []string{"verdict", "4"}},
		"unknown global": {&pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: verdict}, Programs: []*pb.LoadProgram{{Name: "xdp_verdict", Type: pb.ProgramType_PROGRAM_TYPE_XDP, Attach: peer(&pb.XdpAttach{}).Attach}},
			GlobalData: map[string][]byte{"nope": {1, 0, 0, 0}}}, codes.InvalidArgument, []string{"nope"}},
		"missing map owner": {&pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: xdp}, Programs: []*pb.LoadProgram{peer(&pb.XdpAttach{})}, MapOwnerId: 999999}, codes.NotFound, []string{"999999"}},
		"unsigned":          {load(unsigned, peer(&pb.XdpAttach{})), codes.PermissionDenied, []string{"denied by the trust policy: unsigned"}},
		"tampered":          {load(tampered, peer(&pb.XdpAttach{})), codes.PermissionDenied, []string{"does not match its digest"}},
		"kind the rule does not allow": {load(restricted, peer(&pb.XdpAttach{})), codes.PermissionDenied,
			[]string{"xdp", "tracing-only"}},
		"verifier rejection": {load(rejected, &pb.LoadProgram{Name: "xdp_unchecked", Type: pb.ProgramType_PROGRAM_TYPE_XDP, Attach: peer(&pb.XdpAttach{}).Attach}), codes.FailedPrecondition,
			[]string{"program xdp_unchecked", "verifier"}},
		"not cached, pull policy Never": {&pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: notCached, PullPolicy: pb.PullPolicy_PULL_POLICY_NEVER}, Programs: []*pb.LoadProgram{tracepointProg("tracepoint_counter", "syscalls/sys_enter_openat")}},
			codes.NotFound, []string{"not in the cache"}},
		"missing layout": {load("oci:"+filepath.Join(td.images, "nowhere")+":v1", peer(&pb.XdpAttach{})), codes.NotFound, []string{"no OCI layout"}},
		// A name no rule covers is refused before any I/O: that its
		// layout is missing too is never found out.
		"uncovered name": {load("oci:"+filepath.Join(td.dir, "nowhere")+":v1", peer(&pb.XdpAttach{})), codes.PermissionDenied, []string{"out-of-scope", "no rule of the policy covers"}},
	}
	// The ErrorInfo reason of each case, by the code's default: invalid
	// requests, policy denials, verifier rejections.
	reasons := map[string]pb.ErrorReason{
		"unknown program":                 pb.ErrorReason_ERROR_REASON_INVALID_REQUEST,
		"missing map owner":               pb.ErrorReason_ERROR_REASON_INVALID_REQUEST,
		"missing interface":               pb.ErrorReason_ERROR_REASON_ATTACH_FAILED,
		"interface run by another loader": pb.ErrorReason_ERROR_REASON_ATTACH_FAILED,
		"missing netns":                   pb.ErrorReason_ERROR_REASON_ATTACH_FAILED,
		"missing tracepoint":              pb.ErrorReason_ERROR_REASON_ATTACH_FAILED,
		"missing uprobe binary":           pb.ErrorReason_ERROR_REASON_ATTACH_FAILED,
		"not cached, pull policy Never":   pb.ErrorReason_ERROR_REASON_IMAGE_PULL_FAILED,
		"missing layout":                  pb.ErrorReason_ERROR_REASON_IMAGE_PULL_FAILED,
	}
	byCode := map[codes.Code]pb.ErrorReason{
		codes.InvalidArgument:    pb.ErrorReason_ERROR_REASON_INVALID_REQUEST,
		codes.PermissionDenied:   pb.ErrorReason_ERROR_REASON_POLICY_DENIED,
		codes.FailedPrecondition: pb.ErrorReason_ERROR_REASON_VERIFIER_REJECTED,
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			before := td.snapshot(t)
			_, err := td.client.Load(context.Background(), tc.req)
			wantCode(t, err, tc.code, tc.parts...)
			want, ok := reasons[name]
			if !ok {
				want = byCode[tc.code]
			}
			if got := statusReason(err); got != want.String() {
				t.Errorf("reason %s, want %s", got, want)
			}
			t.Logf("%s: %v", name, err)
			td.assertUnchanged(t, before)
			if a := td.lastAudit(t, "load"); a["result"] != "error" || a["code"] != tc.code.String() {
				t.Errorf("audit line %v: want result error, code %v", a, tc.code)
			}
		})
	}

	// The denial's audit line names the decision and its reason.
	_, err := td.load(t, unsigned, peer(&pb.XdpAttach{}))
	wantCode(t, err, codes.PermissionDenied)
	if a := td.lastAudit(t, "load"); a["decision"] != "deny" || a["reason"] != "unsigned" || a["digest"] != strings.SplitN(unsigned, "@", 2)[1] {
		t.Errorf("audit line of a denial: %v", a)
	}
}

// foreignXDP attaches an XDP program of this test's own, not bpfd's, to
// iface until the end of the test.
func foreignXDP(t *testing.T, iface string) {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	dev, err := net.InterfaceByName(iface)
	if err != nil {
		t.Fatal(err)
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: dev.Index})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
}

// TestRequestFaults: other calls' bad input, and a request over the size
// limit.
func TestRequestFaults(t *testing.T) {
	td := newTestDaemon(t, func(c *Config) { c.Socket.MaxRequestBytes = 64 << 10 })
	ctx := context.Background()
	before := td.snapshot(t)

	_, err := td.client.Unload(ctx, &pb.UnloadRequest{Ids: []uint64{424242}})
	wantCode(t, err, codes.NotFound, "424242")
	if a := td.lastAudit(t, "unload"); a["result"] != "error" || a["code"] != "NotFound" {
		t.Errorf("audit line %v", a)
	}
	_, err = td.client.Unload(ctx, &pb.UnloadRequest{})
	wantCode(t, err, codes.InvalidArgument, "ids: none")
	_, err = td.client.Unload(ctx, &pb.UnloadRequest{Ids: []uint64{3, 3}})
	wantCode(t, err, codes.InvalidArgument, "ids[1]: program 3 given twice")
	_, err = td.client.Get(ctx, &pb.GetRequest{Id: 424242})
	wantCode(t, err, codes.NotFound, "424242")
	_, err = td.client.Get(ctx, &pb.GetRequest{})
	wantCode(t, err, codes.InvalidArgument, "id: missing")
	_, err = td.client.List(ctx, &pb.ListRequest{Type: 99})
	wantCode(t, err, codes.InvalidArgument, "type: unknown value 99")
	_, err = td.client.PullImage(ctx, &pb.PullImageRequest{})
	wantCode(t, err, codes.InvalidArgument, "bytecode: missing")

	huge := &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: "file:/x"}, Metadata: map[string]string{"big": strings.Repeat("x", 100<<10)}}
	_, err = td.client.Load(ctx, huge)
	wantCode(t, err, codes.ResourceExhausted)
	td.assertUnchanged(t, before)
}

// TestPullImage pre-pulls and verifies without loading anything; the pulled
// digest then loads with pull policy Never.
func TestPullImage(t *testing.T) {
	td := newTestDaemon(t)
	ctx := context.Background()
	tag := "oci:" + filepath.Join(td.images, "tracepoint") + ":v1"
	ref := buildArtifact(t, tag, "tracepoint_counter.bpf.o")
	td.key.sign(t, ref, verify.FormatLegacy)

	before := td.snapshot(t)
	resp, err := td.client.PullImage(ctx, &pb.PullImageRequest{Bytecode: &pb.Bytecode{Reference: tag}})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetProvenance(); got.GetDigest() != strings.SplitN(ref, "@", 2)[1] || got.GetRule() != "images" || got.GetSigner() != testimage.Fingerprint(t, td.key.pub) {
		t.Errorf("provenance %v", got)
	}
	td.assertUnchanged(t, before)
	if a := td.lastAudit(t, "pull"); a["result"] != "ok" || a["decision"] != "allow" || a["reference"] != tag {
		t.Errorf("audit line %v", a)
	}

	p := td.mustLoadReq(t, &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: tag, PullPolicy: pb.PullPolicy_PULL_POLICY_NEVER}, Programs: []*pb.LoadProgram{tracepointProg("tracepoint_counter", "syscalls/sys_enter_getpid")}})
	td.unload(t, p[0].GetId())

	unsigned := td.image(t, "unsigned", false, "xdp_counter.bpf.o")
	_, err = td.client.PullImage(ctx, &pb.PullImageRequest{Bytecode: &pb.Bytecode{Reference: unsigned}})
	wantCode(t, err, codes.PermissionDenied, "unsigned")
}

func (td *testDaemon) mustLoadReq(t *testing.T, req *pb.LoadRequest) []*pb.Program {
	t.Helper()
	resp, err := td.client.Load(context.Background(), req)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return resp.GetPrograms()
}

// TestRegistryThroughAPI loads from a real registry, then kills it: a
// cached digest still loads (IfNotPresent), a tag fails closed with
// Unavailable and leaves nothing behind.
func TestRegistryThroughAPI(t *testing.T) {
	reg := testutil.StartRegistry(t)
	td := newTestDaemon(t)
	td.writePolicy(t, policyRule{Name: "registry", Images: []string{reg.Host + "/obs/*"}, Keys: []string{td.key.pub}, Kinds: []string{"tracepoint"}})
	if err := td.d.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	tag := reg.Host + "/obs/openat:v1"
	ref := buildArtifact(t, tag, "tracepoint_counter.bpf.o")
	td.key.sign(t, ref, verify.FormatBundle)
	prog := tracepointProg("tracepoint_counter", "syscalls/sys_enter_openat")

	p := td.mustLoad(t, tag, prog)[0]
	if p.GetProvenance().GetDigest() != strings.SplitN(ref, "@", 2)[1] || p.GetProvenance().GetRule() != "registry" {
		t.Errorf("provenance %v", p.GetProvenance())
	}
	td.unload(t, p.GetId())

	reg.Stop()
	p = td.mustLoad(t, ref, prog)[0]
	td.unload(t, p.GetId())
	before := td.snapshot(t)
	_, err := td.load(t, tag, prog)
	wantCode(t, err, codes.Unavailable, reg.Host)
	if got := statusReason(err); got != pb.ErrorReason_ERROR_REASON_IMAGE_PULL_FAILED.String() {
		t.Errorf("reason %s, want image pull failed", got)
	}
	td.assertUnchanged(t, before)
}

// TestDamagedCacheThroughAPI damages the cached object: the next load by
// digest detects it, pulls it again and loads.
func TestDamagedCacheThroughAPI(t *testing.T) {
	td := newTestDaemon(t)
	ref := td.image(t, "tracepoint", true, "tracepoint_counter.bpf.o")
	prog := tracepointProg("tracepoint_counter", "syscalls/sys_enter_openat")
	td.unload(t, td.mustLoad(t, ref, prog)[0].GetId())

	testimage.Damage(t, td.cfg.CacheDir, testimage.ReadManifest(t, td.cfg.CacheDir, rootOf(t, ref)).Layers[0].Digest)
	td.unload(t, td.mustLoad(t, ref, prog)[0].GetId())
	if n := promtest.ToFloat64(td.d.Metrics().cacheRepairs); n != 1 {
		t.Errorf("%v repairs counted, want 1", n)
	}
}

// TestUnwritableCache: a cache dir turned read-only fails pulls with a
// clear error and leaves nothing; what is cached still loads.
func TestUnwritableCache(t *testing.T) {
	testutil.RequirePrivileged(t)
	cache := testutil.Tmpfs(t, "4m", 0)
	td := newTestDaemon(t, func(c *Config) { c.CacheDir = cache })
	cached := td.image(t, "cached", true, "tracepoint_counter.bpf.o")
	fresh := td.image(t, "fresh", true, "kprobe_counter.bpf.o")
	prog := tracepointProg("tracepoint_counter", "syscalls/sys_enter_openat")
	td.unload(t, td.mustLoad(t, cached, prog)[0].GetId())

	if err := unix.Mount("", cache, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	before := td.snapshot(t)
	_, err := td.load(t, fresh, &pb.LoadProgram{Name: "kprobe_counter", Type: pb.ProgramType_PROGRAM_TYPE_KPROBE, Attach: &pb.AttachSpec{Spec: &pb.AttachSpec_Kprobe{Kprobe: &pb.KprobeAttach{Function: "sys_getpid"}}}})
	wantCode(t, err, codes.Internal, "read-only file system")
	td.assertUnchanged(t, before)
	td.unload(t, td.mustLoad(t, cached, prog)[0].GetId())
}

// TestFullCacheDir: with the cache's file system (a small tmpfs) full, a
// load that must pull fails with ResourceExhausted naming the cause and
// leaves nothing: nothing loaded, no blob or half-written blob of it in the
// cache, which stays whole (what it held loads, unrepaired). Once there is
// room the same load succeeds.
func TestFullCacheDir(t *testing.T) {
	testutil.RequirePrivileged(t)
	cache := testutil.Tmpfs(t, "8m", 0)
	td := newTestDaemon(t, func(c *Config) { c.CacheDir = cache })
	cached := td.image(t, "cached", true, "tracepoint_counter.bpf.o")
	big := td.image(t, "big", true, paddedObject(t, "tracepoint_counter.bpf.o", 2<<20))
	prog := tracepointProg("tracepoint_counter", "syscalls/sys_enter_getpid")
	td.unload(t, td.mustLoad(t, cached, prog)[0].GetId())

	filler := filepath.Join(cache, "filler")
	testutil.Fill(t, filler)
	before := td.snapshot(t)
	_, err := td.load(t, big, prog)
	wantCode(t, err, codes.ResourceExhausted, "no space left on device")
	t.Logf("load into a full cache: %v", err)
	td.assertUnchanged(t, before)
	assertNotCached(t, cache, testimage.ReadManifest(t, filepath.Join(td.images, "big"), rootOf(t, big)).Layers[0].Digest)
	td.unload(t, td.mustLoad(t, cached, prog)[0].GetId())

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	td.unload(t, td.mustLoad(t, big, prog)[0].GetId())
	td.unload(t, td.mustLoad(t, cached, prog)[0].GetId())
	if n := promtest.ToFloat64(td.d.Metrics().cacheRepairs); n != 0 {
		t.Errorf("%v cache repairs: the full disk damaged the cache", n)
	}
}

// TestFullStateDir: with the state dir's file system full, a load fails
// with ResourceExhausted and leaves nothing; once there is room it loads.
func TestFullStateDir(t *testing.T) {
	testutil.RequirePrivileged(t)
	small := testutil.Tmpfs(t, "512k", 0)
	td := newTestDaemon(t, func(c *Config) {
		c.StateDir = filepath.Join(small, "state")
		c.CacheDir = filepath.Join(t.TempDir(), "cache")
	})
	ref := td.image(t, "tracepoint", true, "tracepoint_counter.bpf.o")
	prog := tracepointProg("tracepoint_counter", "syscalls/sys_enter_getpid")
	td.unload(t, td.mustLoad(t, ref, prog)[0].GetId())

	filler := filepath.Join(small, "filler")
	testutil.Fill(t, filler)
	before := td.snapshot(t)
	var loaded []uint64
	var err error
	for range 100 {
		var resp *pb.LoadResponse
		if resp, err = td.load(t, ref, prog); err != nil {
			break
		}
		loaded = append(loaded, resp.GetPrograms()[0].GetId())
	}
	wantCode(t, err, codes.ResourceExhausted, "no space left")
	if len(loaded) > 0 {
		td.unload(t, loaded...)
	}
	td.assertUnchanged(t, before)
	os.Remove(filler)
	td.unload(t, td.mustLoad(t, ref, prog)[0].GetId())
}

// TestUnwritableStateDir: bpfd does not start on a read-only state dir, says
// which dir and why, and leaves no bpffs mounted and no socket.
func TestUnwritableStateDir(t *testing.T) {
	testutil.RequirePrivileged(t)
	ro := testutil.Tmpfs(t, "64k", unix.MS_RDONLY)
	dir := t.TempDir()
	td := &testDaemon{images: filepath.Join(dir, "images"), key: newSigner(t)}
	cfg, err := ParseConfig(nil, func(c *Config) {
		c.Socket.Path = filepath.Join(dir, "bpfd.sock")
		c.StateDir = filepath.Join(ro, "state")
		c.CacheDir = filepath.Join(dir, "cache")
		c.BpffsDir = filepath.Join(dir, "bpffs")
		c.PolicyFile = filepath.Join(dir, "policy.yaml")
	})
	if err != nil {
		t.Fatal(err)
	}
	td.cfg = cfg
	td.writePolicy(t)
	_, err = New(context.Background(), cfg, Options{Logger: testLogger(t)})
	if err == nil || !errors.Is(err, unix.EROFS) || !strings.Contains(err.Error(), cfg.StateDir) {
		t.Fatalf("New on a read-only state dir: %v, want a read-only file system error naming %s", err, cfg.StateDir)
	}
	var fs unix.Statfs_t
	if unix.Statfs(cfg.BpffsDir, &fs) == nil && fs.Type == unix.BPF_FS_MAGIC {
		unix.Unmount(cfg.BpffsDir, unix.MNT_DETACH)
		t.Error("a failed start left the bpffs mounted")
	}
	if _, err := os.Stat(cfg.Socket.Path); !os.IsNotExist(err) {
		t.Errorf("a failed start left a socket: %v", err)
	}
}

// TestReadOnlyStateDir: a node whose state dir turns read-only between two
// runs of bpfd (a remount after a disk error, say). bpfd refuses to start,
// naming the dir and the cause, and touches nothing: the programs the last
// run loaded stay in the kernel and pinned. Once the dir is writable again
// bpfd adopts them from the intact store, and they unload.
func TestReadOnlyStateDir(t *testing.T) {
	testutil.RequirePrivileged(t)
	state := testutil.Tmpfs(t, "16m", 0)
	td := newTestDaemon(t, func(c *Config) {
		c.StateDir = state
		c.CacheDir = filepath.Join(state, "cache")
	})
	ref := td.image(t, "tracepoint", true, "tracepoint_counter.bpf.o")
	loaded := td.mustLoad(t, ref, tracepointProg("tracepoint_counter", "syscalls/sys_enter_getpid"))[0]
	pins := td.snapshot(t).Pins
	td.stop(t)

	if err := unix.Mount("", state, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	d, err := New(context.Background(), td.cfg, Options{Logger: testLogger(t)})
	if err == nil {
		d.Close()
		t.Fatalf("New on a read-only state dir succeeded")
	}
	if !errors.Is(err, unix.EROFS) || !strings.Contains(err.Error(), state) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("New on a read-only state dir: %v, want one line naming %s with a read-only file system error", err, state)
	}
	t.Logf("start on a read-only state dir: %v", err)
	if !kernelHasProgram(loaded.GetKernel().GetProgramId()) {
		t.Errorf("the failed start unloaded program %d (kernel program %d)", loaded.GetId(), loaded.GetKernel().GetProgramId())
	}
	for _, pin := range pins {
		if _, err := os.Stat(filepath.Join(td.cfg.BpffsDir, pin)); err != nil {
			t.Errorf("the failed start removed a pin: %v", err)
		}
	}

	if err := unix.Mount("", state, "", unix.MS_REMOUNT, ""); err != nil {
		t.Fatal(err)
	}
	td.start(t)
	resp, err := td.client.Get(context.Background(), &pb.GetRequest{Id: loaded.GetId()})
	if err != nil {
		t.Fatalf("Get %d after the state dir is writable again: %v", loaded.GetId(), err)
	}
	if got, want := resp.GetProgram().GetKernel().GetProgramId(), loaded.GetKernel().GetProgramId(); got != want {
		t.Errorf("program %d adopted with kernel program %d, want %d", loaded.GetId(), got, want)
	}
	if n := promtest.ToFloat64(td.d.Metrics().cacheRepairs); n != 0 {
		t.Errorf("%v cache repairs: the read-only start damaged the cache", n)
	}
	td.unload(t, loaded.GetId())
	td.unload(t, td.mustLoad(t, ref, tracepointProg("tracepoint_counter", "syscalls/sys_enter_getppid"))[0].GetId())
}
