package apicontract

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// AgentConfig is what one version of bpfd-agent asks of bpfd for one
// BpfProgramConfig.
type AgentConfig struct {
	// Name is the config's name, for messages.
	Name string
	// Requests are the agent's Load requests for the config, in the order
	// it sends them (agent.LoadRequests). A request after the first whose
	// map_owner_id is 0 gets the id bpfd gave the first request's program
	// of the same name, as the agent does, so that every attachment of a
	// program shares its maps.
	Requests []*bpfdv1.LoadRequest
	// Selector is the metadata the agent lists the config's programs by.
	Selector map[string]string
	// ManagedBy is the metadata all of the agent's programs carry, which it
	// lists at start to find programs of deleted configs.
	ManagedBy map[string]string
}

// RunAgent does with tg what a bpfd-agent of some version does, as u (the
// user that agent runs as) with the requests that agent makes for configs,
// and checks every answer the agent relies on: each config's requests load
// whole; List by the config's selector returns exactly its programs, with
// the request's metadata as it was sent (the agent compares its config uid
// and request hash to decide that nothing needs loading); Get agrees;
// further attachments share the first one's maps; a denied artifact, an
// unknown map owner and a missing interface are refused with the code and
// reason the agent reports, leaving nothing loaded; Unload by id removes
// everything. It is how agents and daemons of different versions are held
// to each other; tg.Artifact and tg.AdminGID are not used.
func RunAgent(t *testing.T, tg Target, u User, configs []AgentConfig) {
	c := newCaller(t, tg.Socket)
	s := &scenario{t: t, c: c, tg: tg, ids: map[string]uint64{}, programs: map[string]*bpfdv1.Program{}}
	t.Cleanup(s.cleanup)

	loaded := map[string][]uint64{} // by config
	var all []uint64
	for _, cfg := range configs {
		s.step("load of "+cfg.Name, func(t *testing.T) {
			first := map[string]uint64{}
			for i, req := range cfg.Requests {
				req = proto.CloneOf(req)
				if i > 0 && req.GetMapOwnerId() == 0 {
					req.MapOwnerId = first[req.GetPrograms()[0].GetName()]
				}
				a, resp := c.call(t, u, "Load", req)
				if a.Code != "OK" {
					t.Fatalf("Load %d of %s by %s: %s %s %q", i, cfg.Name, u, a.Code, a.Reason, a.Message)
				}
				progs := resp.(*bpfdv1.LoadResponse).GetPrograms()
				if len(progs) != len(req.GetPrograms()) {
					t.Fatalf("Load %d of %s returned %d programs, want %d", i, cfg.Name, len(progs), len(req.GetPrograms()))
				}
				for j, p := range progs {
					if i == 0 {
						first[p.GetName()] = p.GetId()
					}
					label := fmt.Sprintf("%s/%d/%s", cfg.Name, i, p.GetName())
					s.ids[label] = p.GetId()
					s.programs[label] = p
					loaded[cfg.Name] = append(loaded[cfg.Name], p.GetId())
					all = append(all, p.GetId())
					lp := req.GetPrograms()[j]
					got := &bpfdv1.Program{Id: p.GetId(), Name: p.GetName(), Type: p.GetType(), Metadata: p.GetMetadata(), MapOwnerId: p.GetMapOwnerId()}
					want := &bpfdv1.Program{Id: p.GetId(), Name: lp.GetName(), Type: lp.GetType(), Metadata: req.GetMetadata(), MapOwnerId: req.GetMapOwnerId()}
					if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
						t.Errorf("program %s of Load %d of %s (-want +got):\n%s", p.GetName(), i, cfg.Name, diff)
					}
				}
			}
		})
		s.step("list of "+cfg.Name+" by its selector", func(t *testing.T) {
			s.listsExactly(t, u, cfg.Selector, loaded[cfg.Name])
		})
	}
	if len(configs) == 0 {
		return
	}
	s.step("list of every program of the agent", func(t *testing.T) {
		s.listsExactly(t, u, configs[0].ManagedBy, all)
	})
	s.step("get of each program", func(t *testing.T) {
		for label, want := range s.programs {
			a, resp := c.call(t, u, "Get", &bpfdv1.GetRequest{Id: s.ids[label]})
			if a.Code != "OK" {
				t.Fatalf("Get %d by %s: %s %s %q", s.ids[label], u, a.Code, a.Reason, a.Message)
			}
			got := resp.(*bpfdv1.GetResponse).GetProgram()
			if got.GetId() != want.GetId() || got.GetName() != want.GetName() || !maps.Equal(got.GetMetadata(), want.GetMetadata()) {
				t.Errorf("Get %d: %s %v, Load returned %s %v", want.GetId(), got.GetName(), got.GetMetadata(), want.GetName(), want.GetMetadata())
			}
		}
	})

	// Refusals the agent reports by their reason, from the first config's
	// first request.
	first := configs[0].Requests[0]
	denied := proto.CloneOf(first)
	denied.Bytecode.Reference = tg.Denied
	s.fails("load of a denied artifact", u, "Load", denied, "PermissionDenied", policyDenied)
	unknownOwner := proto.CloneOf(first)
	unknownOwner.MapOwnerId = unknownID
	s.fails("load with an unknown map owner", u, "Load", unknownOwner, "NotFound", invalidRequest)
	if missing, ok := withMissingInterface(first); ok {
		s.fails("load on a missing interface", u, "Load", missing, "NotFound", attachFailed, missingInterface)
	}
	s.step("nothing loaded by the refusals", func(t *testing.T) {
		s.listsExactly(t, u, configs[0].ManagedBy, all)
	})

	for _, cfg := range configs {
		s.step("unload of "+cfg.Name, func(t *testing.T) {
			if a, _ := c.call(t, u, "Unload", &bpfdv1.UnloadRequest{Ids: loaded[cfg.Name]}); a.Code != "OK" {
				t.Fatalf("Unload %v by %s: %s %s %q", loaded[cfg.Name], u, a.Code, a.Reason, a.Message)
			}
			for label, id := range s.ids {
				if slices.Contains(loaded[cfg.Name], id) {
					delete(s.programs, label)
				}
			}
			s.listsExactly(t, u, cfg.Selector, nil)
		})
	}
	s.step("none left", func(t *testing.T) {
		s.listsExactly(t, u, configs[0].ManagedBy, nil)
	})
}

// listsExactly checks that List by selector, as u, returns the programs
// ids, each with the metadata its Load returned.
func (s *scenario) listsExactly(t *testing.T, u User, selector map[string]string, ids []uint64) {
	t.Helper()
	a, resp := s.c.call(t, u, "List", &bpfdv1.ListRequest{Selector: selector})
	if a.Code != "OK" {
		t.Fatalf("List by %s: %s %s %q", u, a.Code, a.Reason, a.Message)
	}
	var got []uint64
	byID := map[uint64]*bpfdv1.Program{}
	for _, p := range s.programs {
		byID[p.GetId()] = p
	}
	for _, p := range resp.(*bpfdv1.ListResponse).GetPrograms() {
		got = append(got, p.GetId())
		if want, ok := byID[p.GetId()]; ok && !maps.Equal(want.GetMetadata(), p.GetMetadata()) {
			t.Errorf("List: program %d has metadata %v, Load returned %v", p.GetId(), p.GetMetadata(), want.GetMetadata())
		}
	}
	want := slices.Clone(ids)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(want, got) {
		t.Errorf("List by %v: programs %v, want %v", selector, got, want)
	}
}

// withMissingInterface returns req with the interface of its first
// network program replaced by one that does not exist; false when it has
// none.
func withMissingInterface(req *bpfdv1.LoadRequest) (*bpfdv1.LoadRequest, bool) {
	out := proto.CloneOf(req)
	for _, p := range out.GetPrograms() {
		switch a := p.GetAttach().GetSpec().(type) {
		case *bpfdv1.AttachSpec_Xdp:
			a.Xdp.Interface = missingInterface
			return out, true
		case *bpfdv1.AttachSpec_Tc:
			a.Tc.Interface = missingInterface
			return out, true
		case *bpfdv1.AttachSpec_Tcx:
			a.Tcx.Interface = missingInterface
			return out, true
		}
	}
	return nil, false
}
