package daemon

import (
	"context"
	"fmt"
	"slices"

	"github.com/bpfd-dev/bpfd/internal/peercred"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// UpdateOwner replaces the map reader namespaces of loaded programs'
// owner, without reloading them: the agent's answer to a config whose
// spec.mapReaderNamespaces changed. Only root and admins may.
func (s *server) UpdateOwner(ctx context.Context, in *pb.UpdateOwnerRequest) (*pb.UpdateOwnerResponse, error) {
	who, _ := client(ctx)
	rec := auditRecord{Action: "update-owner", Peer: requesterOf(who)}
	progs, err := s.updateOwner(ctx, in, who, &rec)
	rec.Err = err
	s.audit.write(ctx, rec)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.UpdateOwnerResponse{Programs: make([]*pb.Program, len(progs))}
	for i, p := range progs {
		out.Programs[i] = programProto(p)
	}
	return out, nil
}

func (s *server) updateOwner(ctx context.Context, in *pb.UpdateOwnerRequest, who peercred.Cred, rec *auditRecord) ([]runtime.Program, error) {
	if !s.access.admin(who) {
		return nil, fmt.Errorf("update owners: uid %d may not, only root and members of socket.adminGIDs may: %w", who.UID, ErrPermissionDenied)
	}
	ids, err := unloadIDs(&pb.UnloadRequest{Ids: in.GetIds()})
	if err != nil {
		return nil, err
	}
	rec.IDs = ids
	// The owner's namespace is judged: a program adopted at start keeps
	// its owner until then.
	if err := s.awaitJudged(ctx, "update owners", ids...); err != nil {
		return nil, err
	}
	o := in.GetOwner()
	if o == nil {
		return nil, invalid("owner", "missing: give the programs' owner with its new map_reader_namespaces")
	}
	// The owner's identity is the programs' own: only who may read their
	// maps changes.
	for _, id := range ids {
		p, err := s.manager.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		rec.Programs = append(rec.Programs, p.Name)
		if p.Owner.Config != o.GetConfig() || p.Owner.Namespace != o.GetNamespace() {
			return nil, invalid("owner", "program %d belongs to config %q in namespace %q, not to config %q in namespace %q: only map_reader_namespaces may change",
				id, p.Owner.Config, p.Owner.Namespace, o.GetConfig(), o.GetNamespace())
		}
	}
	return s.manager.SetMapReaderNamespaces(ctx, slices.Clone(o.GetMapReaderNamespaces()), ids...)
}
