package apicontract

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// Target is a bpfd API server to hold to the contract. It serves the
// contract alone: Run expects no programs of other clients.
type Target struct {
	// Socket is the unix socket it serves on; every uid may connect.
	Socket string
	// Artifact is a reference it admits, to an artifact holding the
	// tracepoint program tracepoint_counter and the XDP program
	// xdp_counter.
	Artifact string
	// Denied is a reference its trust policy denies.
	Denied string
	// AdminGID is one of its socket.adminGIDs.
	AdminGID uint32
}

// The users of the contract: root, two others, and the second as a member
// of the admin group.
var (
	root = User{}
	// owner loads programs of its own.
	owner = User{UID: 65534, GID: 65534}
	// other is neither root nor an admin, and owns nothing.
	other = User{UID: 4242, GID: 4242}
)

// A missing interface and an id bpfd never gives.
const (
	missingInterface = "bpfdnope0"
	unknownID        = 1 << 40
)

// Run runs the contract's scenario against tg, one subtest per step, and
// cleans up what it loaded.
func Run(t *testing.T, tg Target) {
	c := newCaller(t, tg.Socket)
	admin := User{UID: other.UID, GID: other.GID, Groups: []uint32{tg.AdminGID}}
	s := &scenario{t: t, c: c, tg: tg, ids: map[string]uint64{}}
	t.Cleanup(s.cleanup)

	tracepoint := func() *bpfdv1.LoadProgram {
		return &bpfdv1.LoadProgram{Name: "tracepoint_counter", Type: bpfdv1.ProgramType_PROGRAM_TYPE_TRACEPOINT,
			Attach: &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Tracepoint{Tracepoint: &bpfdv1.TracepointAttach{Tracepoint: "syscalls/sys_enter_getpid"}}}}
	}
	load := func(ref string, progs ...*bpfdv1.LoadProgram) *bpfdv1.LoadRequest {
		return &bpfdv1.LoadRequest{Bytecode: &bpfdv1.Bytecode{Reference: ref}, Programs: progs, Metadata: map[string]string{"contract": "bpfd"}}
	}
	withMapOwner := func(r *bpfdv1.LoadRequest, id uint64) *bpfdv1.LoadRequest { r.MapOwnerId = id; return r }
	withOwner := func(r *bpfdv1.LoadRequest, o *bpfdv1.Owner) *bpfdv1.LoadRequest { r.Owner = o; return r }
	teamA := &bpfdv1.Owner{Config: "web", Namespace: "team-a", MapReaderNamespaces: []string{"obs"}}
	unload := func(ids ...uint64) *bpfdv1.UnloadRequest { return &bpfdv1.UnloadRequest{Ids: ids} }
	get := func(id uint64) *bpfdv1.GetRequest { return &bpfdv1.GetRequest{Id: id} }

	// Requests the API refuses, by root: what each names is wrong.
	s.fails("load without bytecode", root, "Load", &bpfdv1.LoadRequest{Programs: []*bpfdv1.LoadProgram{tracepoint()}}, "InvalidArgument", invalidRequest)
	s.fails("load of no program", root, "Load", load(tg.Artifact), "InvalidArgument", invalidRequest)
	s.fails("load of a program twice", root, "Load", load(tg.Artifact, tracepoint(), tracepoint()), "InvalidArgument", invalidRequest)
	s.fails("load of a program the artifact lacks", root, "Load",
		load(tg.Artifact, &bpfdv1.LoadProgram{Name: "nope", Type: bpfdv1.ProgramType_PROGRAM_TYPE_TRACEPOINT,
			Attach: &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Tracepoint{Tracepoint: &bpfdv1.TracepointAttach{}}}}),
		"NotFound", invalidRequest, "nope")
	s.fails("load with an unknown map owner", root, "Load", withMapOwner(load(tg.Artifact, tracepoint()), unknownID), "NotFound", invalidRequest)
	s.fails("load of a denied artifact", root, "Load", load(tg.Denied, tracepoint()), "PermissionDenied", policyDenied)
	s.fails("load on a missing interface", root, "Load",
		load(tg.Artifact, &bpfdv1.LoadProgram{Name: "xdp_counter", Type: bpfdv1.ProgramType_PROGRAM_TYPE_XDP,
			Attach: &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Xdp{Xdp: &bpfdv1.XdpAttach{Interface: missingInterface}}}}),
		"NotFound", attachFailed, missingInterface)
	s.fails("get of id 0", root, "Get", get(0), "InvalidArgument", invalidRequest)
	s.fails("get of an unknown id", root, "Get", get(unknownID), "NotFound", invalidRequest)
	s.fails("unload of no id", root, "Unload", unload(), "InvalidArgument", invalidRequest)
	s.fails("unload of an unknown id", root, "Unload", unload(unknownID), "NotFound", invalidRequest)
	s.lists("nothing loaded by the failures", root)

	// Loads, and who owns what.
	s.loads("a", "load by root", root, load(tg.Artifact, tracepoint()), want{})
	s.loads("b", "load by root for an owner", root, withOwner(load(tg.Artifact, tracepoint()), teamA), want{owner: teamA})
	s.loads("c", "load by a user", owner, load(tg.Artifact, tracepoint()), want{uid: owner.UID})
	s.lists("three programs, each with its owner", root, "a", "b", "c")
	s.inventories("the inventory names the kernel program of each, for any client", other, "a", "b", "c")
	s.gets("a user's program, by another", other, "c")

	s.fails("unload of another user's program", other, "Unload", unload(s.id("c")), "PermissionDenied", clientNotAllowed,
		fmt.Sprintf("program %d", s.id("c")), fmt.Sprintf("uid %d", owner.UID))
	s.fails("unload of another user's program and an unknown id", other, "Unload", unload(unknownID, s.id("c")), "PermissionDenied", clientNotAllowed)
	s.fails("unload of root's program by a user", owner, "Unload", unload(s.id("a")), "PermissionDenied", clientNotAllowed,
		fmt.Sprintf("program %d", s.id("a")), "uid 0")
	s.fails("load with another user's program as map owner", other, "Load", withMapOwner(load(tg.Artifact, tracepoint()), s.id("c")),
		"PermissionDenied", clientNotAllowed, fmt.Sprintf("program %d", s.id("c")), fmt.Sprintf("uid %d", owner.UID))
	s.fails("load with an owner by a user", other, "Load", withOwner(load(tg.Artifact, tracepoint()), &bpfdv1.Owner{Config: "web"}),
		"PermissionDenied", clientNotAllowed)
	s.lists("nothing changed by the refusals", root, "a", "b", "c")

	// Who may read an owner's maps changes in place, by an admin alone,
	// for the owner the programs have.
	readers := &bpfdv1.Owner{Config: "web", Namespace: "team-a", MapReaderNamespaces: []string{"obs", "apps"}}
	updateOwner := func(o *bpfdv1.Owner, ids ...uint64) *bpfdv1.UpdateOwnerRequest {
		return &bpfdv1.UpdateOwnerRequest{Ids: ids, Owner: o}
	}
	s.fails("owner update by a user", owner, "UpdateOwner", updateOwner(readers, s.id("b")), "PermissionDenied", clientNotAllowed, fmt.Sprintf("uid %d", owner.UID))
	s.fails("owner update of no id", root, "UpdateOwner", updateOwner(readers), "InvalidArgument", invalidRequest)
	s.fails("owner update without an owner", root, "UpdateOwner", updateOwner(nil, s.id("b")), "InvalidArgument", invalidRequest)
	s.fails("owner update to another config", root, "UpdateOwner", updateOwner(&bpfdv1.Owner{Config: "other", Namespace: "team-a"}, s.id("b")),
		"InvalidArgument", invalidRequest, fmt.Sprintf("program %d", s.id("b")))
	s.fails("owner update of a program of another owner", root, "UpdateOwner", updateOwner(readers, s.id("b"), s.id("a")),
		"InvalidArgument", invalidRequest, fmt.Sprintf("program %d", s.id("a")))
	s.fails("owner update with an unknown id", root, "UpdateOwner", updateOwner(readers, s.id("b"), unknownID), "NotFound", invalidRequest)
	s.lists("nothing changed by the refused updates", root, "a", "b", "c")
	s.updatesOwner("owner update by root", root, readers, "b")

	s.loads("d", "load by a user with its own program as map owner", owner, withMapOwner(load(tg.Artifact, tracepoint()), s.id("c")),
		want{uid: owner.UID, mapOwner: "c"})
	s.loads("e", "load by an admin for an owner", admin, withOwner(load(tg.Artifact, tracepoint()), teamA), want{uid: admin.UID, owner: teamA})
	s.loads("f", "load by an admin with a user's program as map owner", admin, withMapOwner(load(tg.Artifact, tracepoint()), s.id("c")),
		want{uid: admin.UID, mapOwner: "c"})
	s.unloads("unload of a user's program by an admin", admin, "d")
	s.unloads("unload of a user's own program", owner, "c")
	s.unloads("unload of a user's program by root", root, "f")
	s.fails("get of an unloaded program", root, "Get", get(s.id("c")), "NotFound", invalidRequest)
	s.fails("unload of an unloaded program", root, "Unload", unload(s.id("c")), "NotFound", invalidRequest)
	s.lists("what stays", root, "a", "b", "e")
	s.unloads("unload of the rest by root", root, "a", "b", "e")
	s.lists("none left", root)
}

// Reasons.
var (
	invalidRequest   = bpfdv1.ErrorReason_ERROR_REASON_INVALID_REQUEST
	policyDenied     = bpfdv1.ErrorReason_ERROR_REASON_POLICY_DENIED
	attachFailed     = bpfdv1.ErrorReason_ERROR_REASON_ATTACH_FAILED
	clientNotAllowed = bpfdv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED
)

// scenario runs the steps in order; a step that fails stops it.
type scenario struct {
	t   *testing.T
	c   *caller
	tg  Target
	ids map[string]uint64
	// programs are what each load returned, by label.
	programs map[string]*bpfdv1.Program
	// kernelIDs are the kernel programs each load returned, by label.
	kernelIDs map[string]uint32
	stopped   bool
}

// id returns the id of the program loaded as label.
func (s *scenario) id(label string) uint64 { return s.ids[label] }

// step runs fn as a subtest, unless an earlier step failed.
func (s *scenario) step(name string, fn func(t *testing.T)) {
	if s.stopped {
		return
	}
	if !s.t.Run(name, fn) {
		s.stopped = true
	}
}

// fails checks that the call is refused with code and reason, and that the
// message mentions each of mentions.
func (s *scenario) fails(name string, u User, method string, in proto.Message, code string, reason bpfdv1.ErrorReason, mentions ...string) {
	s.step(name, func(t *testing.T) {
		a, _ := s.c.call(t, u, method, in)
		if a.Code != code || a.Reason != reason.String() {
			t.Fatalf("%s by %s: %s %s %q, want %s %s", method, u, a.Code, a.Reason, a.Message, code, reason)
		}
		for _, m := range mentions {
			if !strings.Contains(a.Message, m) {
				t.Errorf("message %q does not mention %q", a.Message, m)
			}
		}
	})
}

// want is what a loaded program must say of itself beyond the request.
type want struct {
	uid      uint32
	owner    *bpfdv1.Owner
	mapOwner string
}

// loads loads one program as u, records it as label, and checks what the
// response says of it.
func (s *scenario) loads(label, name string, u User, in *bpfdv1.LoadRequest, w want) {
	s.step(name, func(t *testing.T) {
		a, resp := s.c.call(t, u, "Load", in)
		if a.Code != "OK" {
			t.Fatalf("Load by %s: %s %s %q", u, a.Code, a.Reason, a.Message)
		}
		progs := resp.(*bpfdv1.LoadResponse).GetPrograms()
		if len(progs) != 1 || progs[0].GetId() == 0 {
			t.Fatalf("Load returned %v, want one program with an id", progs)
		}
		p := progs[0]
		s.ids[label] = p.GetId()
		if s.kernelIDs == nil {
			s.kernelIDs = map[string]uint32{}
		}
		s.kernelIDs[label] = p.GetKernel().GetProgramId()
		if s.programs == nil {
			s.programs = map[string]*bpfdv1.Program{}
		}
		want := &bpfdv1.Program{
			Id: p.GetId(), Managed: true, Name: in.GetPrograms()[0].GetName(), Type: in.GetPrograms()[0].GetType(),
			Metadata: in.GetMetadata(), OwnerUid: w.uid, Owner: w.owner, MapOwnerId: s.ids[w.mapOwner],
			Provenance: &bpfdv1.Provenance{Reference: in.GetBytecode().GetReference()},
			LoadedBy:   &bpfdv1.Peer{Uid: u.UID, Gid: u.GID},
		}
		s.programs[label] = want
		if diff := cmp.Diff(want, contractView(p), protocmp.Transform()); diff != "" {
			t.Errorf("loaded program (-want +got):\n%s", diff)
		}
	})
}

// updatesOwner replaces the owner of the programs loaded as labels, as u,
// and checks the response and what Get says after.
func (s *scenario) updatesOwner(name string, u User, o *bpfdv1.Owner, labels ...string) {
	s.step(name, func(t *testing.T) {
		var ids []uint64
		for _, l := range labels {
			ids = append(ids, s.id(l))
		}
		a, resp := s.c.call(t, u, "UpdateOwner", &bpfdv1.UpdateOwnerRequest{Ids: ids, Owner: o})
		if a.Code != "OK" {
			t.Fatalf("UpdateOwner %v by %s: %s %s %q", ids, u, a.Code, a.Reason, a.Message)
		}
		progs := resp.(*bpfdv1.UpdateOwnerResponse).GetPrograms()
		if len(progs) != len(labels) {
			t.Fatalf("UpdateOwner returned %d programs, want %d", len(progs), len(labels))
		}
		for i, l := range labels {
			s.programs[l].Owner = o
			if diff := cmp.Diff(s.programs[l], contractView(progs[i]), protocmp.Transform()); diff != "" {
				t.Errorf("updated program (-want +got):\n%s", diff)
			}
		}
	})
	for _, l := range labels {
		s.gets(name+": Get of "+l, root, l)
	}
}

// gets checks what Get says of the program loaded as label.
func (s *scenario) gets(name string, u User, label string) {
	s.step(name, func(t *testing.T) {
		a, resp := s.c.call(t, u, "Get", &bpfdv1.GetRequest{Id: s.id(label)})
		if a.Code != "OK" {
			t.Fatalf("Get by %s: %s %s %q", u, a.Code, a.Reason, a.Message)
		}
		if diff := cmp.Diff(s.programs[label], contractView(resp.(*bpfdv1.GetResponse).GetProgram()), protocmp.Transform()); diff != "" {
			t.Errorf("Get (-want +got):\n%s", diff)
		}
	})
}

// unloads unloads the programs loaded as labels, as u, and checks that
// Get no longer finds them.
func (s *scenario) unloads(name string, u User, labels ...string) {
	s.step(name, func(t *testing.T) {
		var ids []uint64
		for _, l := range labels {
			ids = append(ids, s.id(l))
		}
		if a, _ := s.c.call(t, u, "Unload", &bpfdv1.UnloadRequest{Ids: ids}); a.Code != "OK" {
			t.Fatalf("Unload %v by %s: %s %s %q", ids, u, a.Code, a.Reason, a.Message)
		}
		for _, l := range labels {
			delete(s.programs, l)
			if a, _ := s.c.call(t, root, "Get", &bpfdv1.GetRequest{Id: s.id(l)}); a.Code != "NotFound" {
				t.Errorf("Get of unloaded program %d: %s, want NotFound", s.id(l), a.Code)
			}
		}
	})
}

// lists checks that List, as u, returns exactly the programs loaded as
// labels, as each load returned it.
func (s *scenario) lists(name string, u User, labels ...string) {
	s.step(name, func(t *testing.T) {
		a, resp := s.c.call(t, u, "List", &bpfdv1.ListRequest{Selector: map[string]string{"contract": "bpfd"}})
		if a.Code != "OK" {
			t.Fatalf("List by %s: %s %s %q", u, a.Code, a.Reason, a.Message)
		}
		var got, want []*bpfdv1.Program
		for _, p := range resp.(*bpfdv1.ListResponse).GetPrograms() {
			got = append(got, contractView(p))
		}
		for _, l := range labels {
			want = append(want, s.programs[l])
		}
		byID := func(a, b *bpfdv1.Program) int { return int(a.GetId()) - int(b.GetId()) }
		slices.SortFunc(got, byID)
		slices.SortFunc(want, byID)
		if diff := cmp.Diff(want, got, protocmp.Transform(), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("List (-want +got):\n%s", diff)
		}
	})
}

// inventories checks that the node's inventory, as u asks for it, names
// each program loaded as labels as bpfd's program run by the kernel
// program its load returned.
func (s *scenario) inventories(name string, u User, labels ...string) {
	s.step(name, func(t *testing.T) {
		a, resp := s.c.call(t, u, "Inventory", &bpfdv1.InventoryRequest{SkipMaps: true, SkipPins: true})
		if a.Code != "OK" {
			t.Fatalf("Inventory by %s: %s %s %q", u, a.Code, a.Reason, a.Message)
		}
		runs := map[uint64][]uint32{} // bpfd id -> kernel programs naming it
		for _, p := range resp.(*bpfdv1.InventoryResponse).GetPrograms() {
			for _, id := range p.GetManagedIds() {
				runs[id] = append(runs[id], p.GetId())
			}
		}
		for _, l := range labels {
			if got, want := runs[s.id(l)], []uint32{s.kernelIDs[l]}; !slices.Equal(got, want) {
				t.Errorf("program %d (%s): run by kernel programs %v in the inventory, want %v", s.id(l), l, got, want)
			}
		}
	})
}

// cleanup unloads, as root, what the scenario left loaded.
func (s *scenario) cleanup() {
	var ids []uint64
	for l := range s.programs {
		ids = append(ids, s.id(l))
	}
	if len(ids) == 0 {
		return
	}
	if a := call(context.Background(), s.tg.Socket, "Unload", fmt.Sprintf(`{"ids":%s}`, jsonIDs(ids))); a.Code != "OK" {
		s.t.Errorf("clean up: Unload %v: %s %q", ids, a.Code, a.Message)
	}
}

func jsonIDs(ids []uint64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprintf("%q", fmt.Sprint(id))
	}
	return "[" + strings.Join(s, ",") + "]"
}

// contractView keeps what the contract fixes of a program: who and what,
// not how the kernel runs it (ids, pins, tags, times, the pid).
func contractView(p *bpfdv1.Program) *bpfdv1.Program {
	if p == nil {
		return nil
	}
	v := &bpfdv1.Program{
		Id: p.GetId(), Managed: p.GetManaged(), Name: p.GetName(), Type: p.GetType(), Metadata: p.GetMetadata(),
		OwnerUid: p.GetOwnerUid(), Owner: p.GetOwner(), MapOwnerId: p.GetMapOwnerId(),
		Provenance: &bpfdv1.Provenance{Reference: p.GetProvenance().GetReference()},
	}
	if lb := p.GetLoadedBy(); lb != nil {
		v.LoadedBy = &bpfdv1.Peer{Uid: lb.GetUid(), Gid: lb.GetGid()}
	}
	return v
}
