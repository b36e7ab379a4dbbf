package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bpfd-dev/bpfd/pkg/runtime"
	"github.com/bpfd-dev/bpfd/pkg/runtime/inventory"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// server implements the bpfd.v1 API over a runtime.Manager and the Source.
// Handlers convert the request (convert.go), call the runtime, write the
// audit line and convert errors to status codes (status.go).
type server struct {
	pb.UnimplementedBpfdServer

	manager     *runtime.Manager
	source      *Source
	defaultPull runtime.PullPolicy
	audit       *auditor
	metrics     *Metrics
	log         *slog.Logger
	// scanner reads the node inventory, keeping its iterator loaded.
	scanner *inventory.Scanner
}

var _ pb.BpfdServer = (*server)(nil)

func (s *server) Load(ctx context.Context, in *pb.LoadRequest) (*pb.LoadResponse, error) {
	start := time.Now()
	who, _ := requester(ctx)
	ctx, note := withNote(ctx)
	rec := auditRecord{Action: "load", Peer: who, Reference: in.GetBytecode().GetReference(), Note: note}
	for _, p := range in.GetPrograms() {
		rec.Programs = append(rec.Programs, p.GetName())
	}
	req, err := loadRequest(in, s.defaultPull, who)
	var progs []runtime.Program
	if err == nil {
		progs, err = s.manager.Load(ctx, req)
	}
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
		out.Programs[i] = programProto(p)
	}
	return out, nil
}

func (s *server) Unload(ctx context.Context, in *pb.UnloadRequest) (*pb.UnloadResponse, error) {
	who, _ := requester(ctx)
	rec := auditRecord{Action: "unload", Peer: who}
	ids, err := unloadIDs(in)
	if err == nil {
		rec.IDs = ids
		// What is being unloaded, for the audit line; an unknown id fails
		// the Unload below with NotFound.
		for _, id := range ids {
			if p, gerr := s.manager.Get(ctx, id); gerr == nil {
				rec.Programs = append(rec.Programs, p.Name)
				rec.Artifacts = append(rec.Artifacts, artifactName(p.Provenance))
			}
		}
		err = s.manager.Unload(ctx, ids...)
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
		out.Programs[i] = programProto(p)
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
	return &pb.GetResponse{Program: programProto(p)}, nil
}

func (s *server) PullImage(ctx context.Context, in *pb.PullImageRequest) (*pb.PullImageResponse, error) {
	who, _ := requester(ctx)
	ctx, note := withNote(ctx)
	rec := auditRecord{Action: "pull", Peer: who, Reference: in.GetBytecode().GetReference(), Note: note}
	ref, pull, err := bytecodeRef(in.GetBytecode(), s.defaultPull)
	var prov runtime.Provenance
	if err == nil {
		prov, err = s.source.Pull(ctx, ref, pull)
		if err != nil {
			err = fmt.Errorf("bytecode %s: %w", ref, err)
		}
	}
	rec.Err = err
	s.audit.write(ctx, rec)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.PullImageResponse{Provenance: provenanceProto(prov)}, nil
}

// interceptor checks every API call's client against the allowed uids and
// gids (health checks are open to anyone who can connect), writes the audit
// line of calls whose handlers do not write their own, and counts the call
// in the metrics.
func (s *server) interceptor(acc access) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		method := path.Base(info.FullMethod)
		who, err := requester(ctx)
		var resp any
		handled := false
		switch {
		case err != nil:
			err = status.Errorf(codes.Unauthenticated, "%s: %v", method, err)
		case !acc.allows(who) && !strings.HasPrefix(info.FullMethod, "/grpc.health."):
			s.log.Warn("request refused: client not allowed", "method", method, "uid", who.UID, "gid", who.GID, "pid", who.PID)
			err = status.Errorf(codes.PermissionDenied, "uid %d gid %d: %v to use bpfd (see socket.allowedUIDs and allowedGIDs)", who.UID, who.GID, ErrPermissionDenied)
		default:
			resp, err = handler(ctx, req)
			handled = true
		}
		if a, ok := auditActions[method]; ok && !(handled && a.handlerWrites) {
			rec := auditRecord{Action: a.action, Peer: who, Err: err}
			if g, ok := req.(*pb.GetRequest); ok && g.GetId() != 0 {
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

// auditActions name the audit line of each API method. Load, Unload and
// PullImage write their own, with what they decided; the interceptor
// writes it for them only when it refused the call.
var auditActions = map[string]struct {
	action        string
	handlerWrites bool
}{
	"Load":      {"load", true},
	"Unload":    {"unload", true},
	"PullImage": {"pull", true},
	"List":      {"list", false},
	"Get":       {"get", false},
	"Inventory": {"inventory", false},
	"Top":       {"top", false},
}
