package k8stest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bpfd-dev/bpfd/internal/peercred"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// Daemon is an in-memory bpfd: a real gRPC server of the node API
// (bpfdv1.BpfdServer) on a unix socket, which keeps its programs in memory,
// records the requests it serves and answers as bpfd's API documents,
// including the google.rpc.ErrorInfo reasons of its errors and the owner
// checks of clients that are neither root nor admins (it reads their peer
// credentials as bpfd does).
//
// It stands in for bpfd in the unprivileged tests of bpfd-agent's
// reconciler, which need faults on demand (Reject, Stop, Forget), and in the
// scale benchmark, which runs a hundred agents. Nothing is pulled, verified
// or loaded into a kernel. It is held to the real bpfd by one contract
// (internal/testing/apicontract) that both run, and test/e2e runs the agent
// against the real bpfd.
type Daemon struct {
	bpfdv1.UnimplementedBpfdServer

	// Socket is the path of the unix socket it serves on.
	Socket string

	mu         sync.Mutex
	srv        *grpc.Server
	nextID     uint64
	programs   map[uint64]*bpfdv1.Program
	rejections map[string]error
	artifacts  map[string][]string
	interfaces map[string]bool
	adminGIDs  []uint32
	calls      map[string]int
	loads      []*bpfdv1.LoadRequest
	// unmanaged is what Inventory reports besides the loaded programs.
	unmanaged *bpfdv1.InventoryResponse
}

var _ bpfdv1.BpfdServer = (*Daemon)(nil)

// StartDaemon serves an empty in-memory bpfd on a fresh socket until the test
// ends. Every interface name exists unless SetInterfaces says otherwise.
func StartDaemon(tb testing.TB) *Daemon {
	tb.Helper()
	// A short path: unix socket paths are limited to 107 bytes.
	dir, err := os.MkdirTemp("", "bpfd-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	d, err := ServeDaemon(filepath.Join(dir, "bpfd.sock"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(d.Stop)
	return d
}

// ServeDaemon serves an empty in-memory bpfd on a unix socket at path until
// Stop, for users without a testing.TB such as the benchmarks.
func ServeDaemon(path string) (*Daemon, error) {
	d := &Daemon{
		Socket:     path,
		nextID:     1,
		programs:   map[uint64]*bpfdv1.Program{},
		rejections: map[string]error{},
		artifacts:  map[string][]string{},
		calls:      map[string]int{},
	}
	return d, d.serve()
}

// Start serves on d.Socket again after Stop, with the state d had, as bpfd
// does after a restart.
func (d *Daemon) Start(tb testing.TB) {
	tb.Helper()
	if err := d.serve(); err != nil {
		tb.Fatal(err)
	}
}

func (d *Daemon) serve() error {
	os.Remove(d.Socket)
	l, err := net.Listen("unix", d.Socket)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", d.Socket, err)
	}
	srv := grpc.NewServer(grpc.Creds(peercred.TransportCredentials()))
	bpfdv1.RegisterBpfdServer(srv, d)
	d.mu.Lock()
	d.srv = srv
	d.mu.Unlock()
	go srv.Serve(l)
	return nil
}

// Stop stops serving, as if bpfd went down; calls fail with Unavailable.
func (d *Daemon) Stop() {
	d.mu.Lock()
	srv := d.srv
	d.srv = nil
	d.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// Forget drops every program, as a bpfd that lost its state would.
func (d *Daemon) Forget() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.programs = map[uint64]*bpfdv1.Program{}
}

// Reject makes loads of reference fail with code and reason, as bpfd's trust
// policy (PermissionDenied, POLICY_DENIED), the verifier
// (FailedPrecondition, VERIFIER_REJECTED) or a registry (Unavailable,
// IMAGE_PULL_FAILED) would.
func (d *Daemon) Reject(reference string, code codes.Code, reason bpfdv1.ErrorReason, message string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rejections[reference] = errorWithReason(code, reason, message)
}

// Accept undoes Reject.
func (d *Daemon) Accept(reference string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.rejections, reference)
}

// SetPrograms makes the artifact at reference hold only the named
// programs; by default an artifact holds whatever program is asked for.
func (d *Daemon) SetPrograms(reference string, names ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.artifacts[reference] = slices.Clone(names)
}

// SetAdminGIDs sets the groups whose members, like root, may set owners and
// act on any program (bpfd's socket.adminGIDs).
func (d *Daemon) SetAdminGIDs(gids ...uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.adminGIDs = slices.Clone(gids)
}

// SetInterfaces makes only the named interfaces exist.
func (d *Daemon) SetInterfaces(names ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.interfaces = map[string]bool{}
	for _, n := range names {
		d.interfaces[n] = true
	}
}

// Programs returns the loaded programs by id.
func (d *Daemon) Programs() []*bpfdv1.Program {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ps []*bpfdv1.Program
	for _, id := range slices.Sorted(maps.Keys(d.programs)) {
		ps = append(ps, proto.Clone(d.programs[id]).(*bpfdv1.Program))
	}
	return ps
}

// Calls returns how often method ("Load", "Unload", "List", "Inventory")
// was called.
func (d *Daemon) Calls(method string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[method]
}

// Loads returns the Load requests served, in order.
func (d *Daemon) Loads() []*bpfdv1.LoadRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.loads)
}

// Load loads every program of the request or, on any error, none. It
// checks the request in bpfd's order: its form, what the client may ask,
// the trust policy (Reject), the artifact's programs (SetPrograms), the
// hooks (SetInterfaces), the map owner.
func (d *Daemon) Load(ctx context.Context, req *bpfdv1.LoadRequest) (*bpfdv1.LoadResponse, error) {
	who, err := peercred.FromContext(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls["Load"]++
	d.loads = append(d.loads, proto.Clone(req).(*bpfdv1.LoadRequest))

	ref := req.GetBytecode().GetReference()
	if ref == "" {
		return nil, invalidRequest("bytecode.reference: missing")
	}
	if len(req.GetPrograms()) == 0 {
		return nil, invalidRequest("programs: none: name at least one program to load")
	}
	for _, p := range req.GetPrograms() {
		if err := checkType(p); err != nil {
			return nil, err
		}
	}
	if o := req.GetOwner(); o != nil && !proto.Equal(o, &bpfdv1.Owner{}) && !d.admin(who) {
		return nil, errorWithReason(codes.PermissionDenied, bpfdv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED,
			fmt.Sprintf("owner: uid %d may not set it, only root and members of socket.adminGIDs may: client not allowed", who.UID))
	}
	seen := map[string]bool{}
	for _, p := range req.GetPrograms() {
		if seen[p.GetName()] {
			return nil, invalidRequest(fmt.Sprintf("program %s: requested twice: invalid", p.GetName()))
		}
		seen[p.GetName()] = true
	}
	owner, ownerKnown := d.programs[req.GetMapOwnerId()]
	if ownerKnown {
		if err := d.mayUse(who, "use the maps of", owner); err != nil {
			return nil, err
		}
	}
	if err := d.rejections[ref]; err != nil {
		return nil, err
	}
	for _, p := range req.GetPrograms() {
		if names, ok := d.artifacts[ref]; ok && !slices.Contains(names, p.GetName()) {
			return nil, errorWithReason(codes.NotFound, bpfdv1.ErrorReason_ERROR_REASON_INVALID_REQUEST,
				fmt.Sprintf("program %s: not in %s (programs: %s): not found", p.GetName(), ref, strings.Join(names, ", ")))
		}
	}
	for _, p := range req.GetPrograms() {
		if err := d.checkInterface(p); err != nil {
			return nil, err
		}
	}
	var ownerMaps []*bpfdv1.MapInfo
	if id := req.GetMapOwnerId(); id != 0 {
		if !ownerKnown {
			return nil, errorWithReason(codes.NotFound, bpfdv1.ErrorReason_ERROR_REASON_INVALID_REQUEST, fmt.Sprintf("map owner %d: program not found", id))
		}
		ownerMaps = owner.GetMaps()
	}

	prov := &bpfdv1.Provenance{
		Reference:         ref,
		Digest:            digestOf(ref),
		Signer:            "SHA256:test-signer",
		Rule:              "test-rule",
		PolicyFingerprint: "sha256:test-policy",
	}
	var claimed *bpfdv1.Owner
	if o := req.GetOwner(); o != nil && !proto.Equal(o, &bpfdv1.Owner{}) {
		claimed = proto.Clone(o).(*bpfdv1.Owner)
	}
	resp := &bpfdv1.LoadResponse{}
	for _, lp := range req.GetPrograms() {
		id := d.nextID
		d.nextID++
		pin := fmt.Sprintf("/run/bpfd/fs/%d", id)
		progMaps := ownerMaps
		if progMaps == nil {
			progMaps = []*bpfdv1.MapInfo{{Name: "counters", Id: uint32(5000 + id), PinPath: pin + "/counters"}}
		}
		p := &bpfdv1.Program{
			Id:         id,
			Managed:    true,
			Name:       lp.GetName(),
			Type:       lp.GetType(),
			Attach:     lp.GetAttach(),
			Metadata:   maps.Clone(req.GetMetadata()),
			Provenance: prov,
			Kernel: &bpfdv1.KernelInfo{
				ProgramId: uint32(1000 + id),
				LinkIds:   []uint32{uint32(3000 + id)},
				MapIds:    []uint32{progMaps[0].GetId()},
				Name:      truncate(lp.GetName(), 15),
			},
			PinPath:    pin,
			Maps:       progMaps,
			MapOwnerId: req.GetMapOwnerId(),
			LoadedBy:   &bpfdv1.Peer{Uid: who.UID, Gid: who.GID, Pid: who.PID},
			LoadedAt:   timestamppb.Now(),
			OwnerUid:   who.UID,
			Owner:      claimed,
		}
		d.programs[id] = p
		resp.Programs = append(resp.Programs, proto.Clone(p).(*bpfdv1.Program))
	}
	return resp, nil
}

// admin reports whether the client may set owners and act on any program.
func (d *Daemon) admin(who peercred.Cred) bool {
	return who.UID == 0 || who.InGroup(d.adminGIDs)
}

// mayUse refuses a client that is neither root nor an admin acting on a
// program whose owner uid is not its own.
func (d *Daemon) mayUse(who peercred.Cred, action string, p *bpfdv1.Program) error {
	if d.admin(who) || p.GetOwnerUid() == who.UID {
		return nil
	}
	return errorWithReason(codes.PermissionDenied, bpfdv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED,
		fmt.Sprintf("program %d: owned by uid %d; uid %d may %s only its own programs: client not allowed", p.GetId(), p.GetOwnerUid(), who.UID, action))
}

// checkType refuses an attach spec that does not attach the program's type.
func checkType(p *bpfdv1.LoadProgram) error {
	ok := false
	switch p.GetAttach().GetSpec().(type) {
	case *bpfdv1.AttachSpec_Xdp:
		ok = p.GetType() == bpfdv1.ProgramType_PROGRAM_TYPE_XDP
	case *bpfdv1.AttachSpec_Tc:
		ok = p.GetType() == bpfdv1.ProgramType_PROGRAM_TYPE_TC
	case *bpfdv1.AttachSpec_Tcx:
		ok = p.GetType() == bpfdv1.ProgramType_PROGRAM_TYPE_TCX
	case *bpfdv1.AttachSpec_Tracepoint:
		ok = p.GetType() == bpfdv1.ProgramType_PROGRAM_TYPE_TRACEPOINT
	case *bpfdv1.AttachSpec_Kprobe:
		ok = p.GetType() == bpfdv1.ProgramType_PROGRAM_TYPE_KPROBE || p.GetType() == bpfdv1.ProgramType_PROGRAM_TYPE_KRETPROBE
	case *bpfdv1.AttachSpec_Uprobe:
		ok = p.GetType() == bpfdv1.ProgramType_PROGRAM_TYPE_UPROBE || p.GetType() == bpfdv1.ProgramType_PROGRAM_TYPE_URETPROBE
	case *bpfdv1.AttachSpec_Fentry:
		ok = p.GetType() == bpfdv1.ProgramType_PROGRAM_TYPE_FENTRY || p.GetType() == bpfdv1.ProgramType_PROGRAM_TYPE_FEXIT
	case *bpfdv1.AttachSpec_Cgroup:
		ok = p.GetType() == bpfdv1.ProgramType_PROGRAM_TYPE_CGROUP
	case *bpfdv1.AttachSpec_RawTracepoint:
		ok = p.GetType() == bpfdv1.ProgramType_PROGRAM_TYPE_RAW_TRACEPOINT || p.GetType() == bpfdv1.ProgramType_PROGRAM_TYPE_TP_BTF
	}
	if !ok {
		return invalidRequest(fmt.Sprintf("program %s: attach spec does not match type %s", p.GetName(), p.GetType()))
	}
	return nil
}

// checkInterface refuses a network program on an interface that does not
// exist (SetInterfaces).
func (d *Daemon) checkInterface(p *bpfdv1.LoadProgram) error {
	var iface string
	switch s := p.GetAttach().GetSpec().(type) {
	case *bpfdv1.AttachSpec_Xdp:
		iface = s.Xdp.GetInterface()
	case *bpfdv1.AttachSpec_Tc:
		iface = s.Tc.GetInterface()
	case *bpfdv1.AttachSpec_Tcx:
		iface = s.Tcx.GetInterface()
	}
	if iface != "" && d.interfaces != nil && !d.interfaces[iface] {
		return errorWithReason(codes.NotFound, bpfdv1.ErrorReason_ERROR_REASON_ATTACH_FAILED,
			fmt.Sprintf("program %s: interface %s: not found", p.GetName(), iface))
	}
	return nil
}

// Unload unloads every program named or, when the client may not unload
// one or one is unknown, none.
func (d *Daemon) Unload(ctx context.Context, req *bpfdv1.UnloadRequest) (*bpfdv1.UnloadResponse, error) {
	who, err := peercred.FromContext(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls["Unload"]++
	if len(req.GetIds()) == 0 {
		return nil, invalidRequest("ids: none: give at least one program id")
	}
	seen := map[uint64]bool{}
	for i, id := range req.GetIds() {
		if id == 0 || seen[id] {
			return nil, invalidRequest(fmt.Sprintf("ids[%d]: %d is not a program id or is given twice", i, id))
		}
		seen[id] = true
	}
	for _, id := range req.GetIds() {
		if p, ok := d.programs[id]; ok {
			if err := d.mayUse(who, "unload", p); err != nil {
				return nil, err
			}
		}
	}
	for _, id := range req.GetIds() {
		if _, ok := d.programs[id]; !ok {
			return nil, errorWithReason(codes.NotFound, bpfdv1.ErrorReason_ERROR_REASON_INVALID_REQUEST, fmt.Sprintf("program %d: not found", id))
		}
	}
	for _, id := range req.GetIds() {
		delete(d.programs, id)
	}
	return &bpfdv1.UnloadResponse{}, nil
}

// UpdateOwner replaces the map reader namespaces of the programs' owner,
// as the real bpfd does: by root or an admin, for the owner the programs
// have, all or none.
func (d *Daemon) UpdateOwner(ctx context.Context, req *bpfdv1.UpdateOwnerRequest) (*bpfdv1.UpdateOwnerResponse, error) {
	who, err := peercred.FromContext(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls["UpdateOwner"]++
	if !d.admin(who) {
		return nil, errorWithReason(codes.PermissionDenied, bpfdv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED,
			fmt.Sprintf("update owners: uid %d may not, only root and admins may: client not allowed", who.UID))
	}
	if len(req.GetIds()) == 0 {
		return nil, invalidRequest("ids: none: give at least one program id")
	}
	o := req.GetOwner()
	if o == nil {
		return nil, invalidRequest("owner: missing")
	}
	for _, id := range req.GetIds() {
		p, ok := d.programs[id]
		if !ok {
			return nil, errorWithReason(codes.NotFound, bpfdv1.ErrorReason_ERROR_REASON_INVALID_REQUEST, fmt.Sprintf("program %d: not found", id))
		}
		if p.GetOwner().GetConfig() != o.GetConfig() || p.GetOwner().GetNamespace() != o.GetNamespace() {
			return nil, invalidRequest(fmt.Sprintf("owner: program %d belongs to config %q in namespace %q: only map_reader_namespaces may change",
				id, p.GetOwner().GetConfig(), p.GetOwner().GetNamespace()))
		}
	}
	resp := &bpfdv1.UpdateOwnerResponse{}
	for _, id := range req.GetIds() {
		p := d.programs[id]
		p.Owner = proto.Clone(o).(*bpfdv1.Owner)
		resp.Programs = append(resp.Programs, proto.Clone(p).(*bpfdv1.Program))
	}
	return resp, nil
}

// Get returns one program.
func (d *Daemon) Get(_ context.Context, req *bpfdv1.GetRequest) (*bpfdv1.GetResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls["Get"]++
	if req.GetId() == 0 {
		return nil, invalidRequest("id: missing: give a program id")
	}
	p, ok := d.programs[req.GetId()]
	if !ok {
		return nil, errorWithReason(codes.NotFound, bpfdv1.ErrorReason_ERROR_REASON_INVALID_REQUEST, fmt.Sprintf("program %d: not found", req.GetId()))
	}
	return &bpfdv1.GetResponse{Program: proto.Clone(p).(*bpfdv1.Program)}, nil
}

// List returns the programs of the type and metadata asked for.
func (d *Daemon) List(_ context.Context, req *bpfdv1.ListRequest) (*bpfdv1.ListResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls["List"]++
	resp := &bpfdv1.ListResponse{}
	for _, id := range slices.Sorted(maps.Keys(d.programs)) {
		p := d.programs[id]
		if t := req.GetType(); t != bpfdv1.ProgramType_PROGRAM_TYPE_UNSPECIFIED && p.GetType() != t {
			continue
		}
		match := true
		for k, v := range req.GetSelector() {
			if p.GetMetadata()[k] != v {
				match = false
			}
		}
		if match {
			resp.Programs = append(resp.Programs, proto.Clone(p).(*bpfdv1.Program))
		}
	}
	return resp, nil
}

// invalidRequest is bpfd's answer to a malformed request.
func invalidRequest(message string) error {
	return errorWithReason(codes.InvalidArgument, bpfdv1.ErrorReason_ERROR_REASON_INVALID_REQUEST, message)
}

// errorWithReason returns a status error carrying the ErrorInfo detail bpfd
// attaches.
func errorWithReason(code codes.Code, reason bpfdv1.ErrorReason, message string) error {
	st, err := status.New(code, message).WithDetails(&errdetails.ErrorInfo{Domain: "bpfd.io", Reason: reason.String()})
	if err != nil {
		return status.Error(code, message)
	}
	return st.Err()
}

// digestOf returns the digest in ref or, for a reference without one, a
// stand-in for what a registry would resolve it to.
func digestOf(ref string) string {
	if _, d, ok := strings.Cut(ref, "@"); ok {
		return d
	}
	sum := sha256.Sum256([]byte(ref))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
