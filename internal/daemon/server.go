package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bpfd-dev/bpfd/internal/peercred"
	"github.com/bpfd-dev/bpfd/internal/supplychain"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
	"github.com/bpfd-dev/bpfd/pkg/runtime/inventory"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// server implements the bpfd.v1 API over the supply chain and a
// runtime.Manager. Handlers convert the request (convert.go), check it, have
// the supply chain resolve, pull and verify the bytecode, hand what it
// admitted to the runtime (bytecode.go), write the audit line and convert
// errors to status codes (status.go).
type server struct {
	pb.UnimplementedBpfdServer

	manager     *runtime.Manager
	chain       *supplychain.Chain
	defaultPull supplychain.PullPolicy
	audit       *auditor
	access      access
	metrics     *Metrics
	log         *slog.Logger

	// revocation is the configured revocation mode (revocation.go).
	revocation string
	admissions admissions
	// rejudgeMu serializes the judgements of every program; startJudged
	// is closed once the programs adopted at start are judged
	// (startjudgement.go), judging counts that pass.
	rejudgeMu   sync.Mutex
	startJudged chan struct{}
	judging     sync.WaitGroup
	// maxCacheSize is cache.maxSize; inflight the artifacts of loads
	// under way (cache.go).
	maxCacheSize int64
	inflight     inflight

	collectMu                sync.Mutex
	collecting, collectAgain bool
	collectWG                sync.WaitGroup
	// scanner reads the node inventory, keeping its iterator loaded.
	scanner *inventory.Scanner
}

var _ pb.BpfdServer = (*server)(nil)

func (s *server) Load(ctx context.Context, in *pb.LoadRequest) (*pb.LoadResponse, error) {
	start := time.Now()
	who, _ := client(ctx)
	rec := auditRecord{Action: "load", Peer: requesterOf(who), Reference: in.GetBytecode().GetReference()}
	for _, p := range in.GetPrograms() {
		rec.Programs = append(rec.Programs, p.GetName())
	}
	progs, err := s.load(ctx, in, who, &rec)
	s.metrics.load(time.Since(start), err)
	for _, p := range progs {
		rec.IDs = append(rec.IDs, p.ID)
	}
	rec.Err = err
	s.audit.write(ctx, rec)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.LoadResponse{Programs: make([]*pb.Program, len(progs))}
	for i, p := range progs {
		out.Programs[i] = s.programProto(p)
	}
	return out, nil
}

// load checks the request and what the client may ask, has the supply
// chain fetch and admit its bytecode, and loads it; rec gets what the
// supply chain decided. Everything that can refuse the request without
// I/O runs before the supply chain is asked.
func (s *server) load(ctx context.Context, in *pb.LoadRequest, who peercred.Cred, rec *auditRecord) ([]runtime.Program, error) {
	req, ref, pull, err := loadRequest(in, s.defaultPull, requesterOf(who))
	if err != nil {
		return nil, err
	}
	if err := s.access.mayClaimOwner(who, req.Owner); err != nil {
		return nil, err
	}
	if err := s.access.mayClaimTenant(who, req.Tenant); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if id := req.MapOwnerID; id != 0 {
		// A map owner adopted at start that the policy in force revokes
		// must not lend its maps first.
		if err := s.awaitJudged(ctx, "map owner", id); err != nil {
			return nil, err
		}
		// An unknown map owner is the runtime's to report.
		if owner, err := s.manager.Get(ctx, id); err == nil {
			if err := s.access.mayUse(who, "use the maps of", owner); err != nil {
				return nil, fmt.Errorf("map owner: %w", err)
			}
		}
	}
	// A tenant's request (an owner namespace) is admitted only by a rule
	// that admits its namespace.
	res, err := s.fetch(ctx, ref, pull, req.Owner.Namespace)
	rec.Supply = res
	if err != nil {
		return nil, err
	}
	req.Metadata = withRecordTypes(req.Metadata, res.Annotations)
	defer s.inflight.hold(res.Digest)()
	progs, err := s.manager.Load(ctx, req, bytecode(res))
	if err != nil {
		return nil, err
	}
	for _, p := range progs {
		s.admissions.set(p.ID, admittedBy(res))
	}
	// A policy reloaded while this load was under way: the judgement of
	// every program then may have missed these; judge them now.
	if v := res.Verdict; v != nil && v.Policy != s.chain.PolicyFingerprint() {
		if err := s.rejudge(ctx, "load", progs); err != nil {
			s.log.Error("programs loaded under a policy since replaced could not all be judged again", "error", err)
		}
	}
	return progs, nil
}

// fetch has the supply chain resolve, pull and verify ref for namespace
// ("" for none), and counts what it did.
func (s *server) fetch(ctx context.Context, ref string, pull supplychain.PullPolicy, namespace string) (*supplychain.Result, error) {
	res, err := s.chain.FetchFor(ctx, ref, pull, namespace)
	return s.fetched(ref, res, err)
}

// fetched counts what the supply chain did, has the cache collected after
// a pull, and names the reference in an error.
func (s *server) fetched(ref string, res *supplychain.Result, err error) (*supplychain.Result, error) {
	s.metrics.fetched(res)
	if res != nil && res.Pulls > 0 {
		s.collectSoon()
	}
	if err != nil {
		return res, fmt.Errorf("bytecode %s: %w", ref, err)
	}
	return res, nil
}

func (s *server) Unload(ctx context.Context, in *pb.UnloadRequest) (*pb.UnloadResponse, error) {
	who, _ := client(ctx)
	rec := auditRecord{Action: "unload", Peer: requesterOf(who)}
	ids, err := unloadIDs(in)
	if err == nil {
		rec.IDs = ids
		// What is being unloaded, for the audit line, and whether the
		// client may: all or nothing. An unknown id fails the Unload below
		// with NotFound.
		for _, id := range ids {
			p, gerr := s.manager.Get(ctx, id)
			if gerr != nil {
				continue
			}
			rec.Programs = append(rec.Programs, p.Name)
			rec.Artifacts = append(rec.Artifacts, artifactName(p.Provenance))
			if err == nil {
				err = s.access.mayUse(who, "unload", p)
			}
		}
		if err == nil {
			err = s.manager.Unload(ctx, ids...)
		}
		if err == nil {
			s.admissions.forget(ids...)
		}
	}
	rec.Err = err
	s.audit.write(ctx, rec)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.UnloadResponse{}, nil
}

// artifactName names the artifact a program came from: its reference,
// with the digest unless the reference names it (or is a local file).
func artifactName(p runtime.Provenance) string {
	if p.Digest == "" || strings.HasSuffix(p.Reference, "@"+p.Digest) {
		return p.Reference
	}
	return p.Reference + "@" + p.Digest
}

func (s *server) List(ctx context.Context, in *pb.ListRequest) (*pb.ListResponse, error) {
	opts, err := listOptions(in)
	if err != nil {
		return nil, toStatus(err)
	}
	progs, err := s.manager.List(ctx, opts)
	if err != nil {
		return nil, toStatus(err)
	}
	progs = withoutPrograms(progs, s.ownProgram())
	out := &pb.ListResponse{Programs: make([]*pb.Program, len(progs))}
	for i, p := range progs {
		out.Programs[i] = s.programProto(p)
	}
	return out, nil
}

func (s *server) Get(ctx context.Context, in *pb.GetRequest) (*pb.GetResponse, error) {
	if in.GetId() == 0 {
		return nil, toStatus(invalid("id", "missing: give a program id"))
	}
	p, err := s.manager.Get(ctx, runtime.ID(in.GetId()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.GetResponse{Program: s.programProto(p)}, nil
}

func (s *server) PullImage(ctx context.Context, in *pb.PullImageRequest) (*pb.PullImageResponse, error) {
	who, _ := client(ctx)
	rec := auditRecord{Action: "pull", Peer: requesterOf(who), Reference: in.GetBytecode().GetReference()}
	ref, pull, err := bytecodeRef(in.GetBytecode(), s.defaultPull)
	var res *supplychain.Result
	if err == nil {
		// Pull checks the objects without holding them: pulling a large
		// artifact takes little memory.
		res, err = s.chain.Pull(ctx, ref, pull)
		res, err = s.fetched(ref, res, err)
		rec.Supply = res
	}
	rec.Err = err
	s.audit.write(ctx, rec)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.PullImageResponse{Provenance: provenanceProto(provenance(res))}, nil
}

// interceptor checks every API call's client against the allowed uids and
// gids (health checks are open to anyone who can connect), writes the audit
// line of calls whose handlers do not write their own (or did not finish:
// a panic), and counts the call in the metrics.
func (s *server) interceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		method := path.Base(info.FullMethod)
		who, err := client(ctx)
		var resp any
		handled := false
		switch {
		case err != nil:
			err = status.Errorf(codes.Unauthenticated, "%s: %v", method, err)
		case !s.access.allows(who) && !strings.HasPrefix(info.FullMethod, "/grpc.health."):
			s.log.Warn("request refused: client not allowed", "method", method, "uid", who.UID, "gid", who.GID, "pid", who.PID)
			err = toStatus(fmt.Errorf("uid %d gid %d: %w to use bpfd (see socket.allowedUIDs and allowedGIDs)", who.UID, who.GID, ErrPermissionDenied))
		default:
			resp, err = handler(ctx, req)
			handled = !errors.Is(err, errPanicked)
			if !handled {
				err = toStatus(err)
			}
		}
		if a, ok := auditActions[method]; ok && !(handled && a.handlerWrites) {
			rec := auditRecord{Action: a.action, Peer: requesterOf(who), Err: err}
			if g, ok := req.(interface{ GetId() uint64 }); ok && g.GetId() != 0 {
				rec.IDs = []runtime.ID{runtime.ID(g.GetId())}
			}
			s.audit.write(ctx, rec)
		}
		code := status.Code(err)
		s.metrics.request(method, code.String())
		if err != nil {
			s.log.Debug("request failed", "method", method, "uid", who.UID, "pid", who.PID, "code", code.String(), "error", status.Convert(err).Message())
		}
		return resp, err
	}
}

// auditActions name the audit line of each API method. Load, Unload,
// PullImage and UpdateOwner write their own, with what they decided; the interceptor
// writes it for them only when it refused the call.
var auditActions = map[string]struct {
	action        string
	handlerWrites bool
}{
	"Load":        {"load", true},
	"Unload":      {"unload", true},
	"PullImage":   {"pull", true},
	"UpdateOwner": {"update-owner", true},
	"List":        {"list", false},
	"Get":         {"get", false},
	// ListCache and PruneCache write their own.
	"ListCache":  {"list-cache", true},
	"PruneCache": {"prune-cache", true},
	"Inventory":  {"inventory", false},
	"Top":        {"top", false},
	"Events":     {"events", false},
	"MapDump":    {"map-dump", false},
	"MapGet":     {"map-get", false},
	"MapUpdate":  {"map-update", false},
	"MapDelete":  {"map-delete", false},
}
