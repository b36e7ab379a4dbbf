package agent

import (
	"context"

	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/controller-runtime/pkg/log"

	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// list returns the programs the agent loaded for configs of its kind whose
// metadata has every key of selector with its value.
func (r *configReconciler) list(ctx context.Context, selector map[string]string) ([]*bpfdv1.Program, error) {
	sel := map[string]string{MetadataManagedBy: r.kind.managedBy}
	for k, v := range selector {
		sel[k] = v
	}
	callCtx, cancel := context.WithTimeout(ctx, r.opts.CallTimeout)
	defer cancel()
	resp, err := r.daemon.List(callCtx, &bpfdv1.ListRequest{Selector: sel})
	if err != nil {
		return nil, err
	}
	return resp.GetPrograms(), nil
}

// loadAll sends the requests LoadRequests or TenantLoadRequests made, each
// further attachment of a program with the program's first attachment as
// its map owner, and returns what bpfd loaded. When one fails, it unloads
// what the others loaded (what it cannot unload, the next reconcile finds)
// and returns the failure.
func (r *configReconciler) loadAll(ctx context.Context, reqs []*bpfdv1.LoadRequest) ([]*bpfdv1.Program, error) {
	callCtx, cancel := context.WithTimeout(ctx, r.opts.CallTimeout)
	defer cancel()
	resp, err := r.daemon.Load(callCtx, reqs[0])
	if err != nil {
		return nil, err
	}
	programs := resp.GetPrograms()
	firstIDs := make(map[string]uint64, len(programs))
	for _, p := range programs {
		firstIDs[p.GetName()] = p.GetId()
	}
	for _, req := range reqs[1:] {
		req = proto.CloneOf(req)
		req.MapOwnerId = firstIDs[req.GetPrograms()[0].GetName()]
		resp, err := r.daemon.Load(callCtx, req)
		if err != nil {
			if uerr := r.unloadPrograms(ctx, programs); uerr != nil {
				log.FromContext(ctx).Error(uerr, "unload the programs of a partly failed load")
			}
			return nil, err
		}
		programs = append(programs, resp.GetPrograms()...)
	}
	return programs, nil
}

func (r *configReconciler) unloadPrograms(ctx context.Context, programs []*bpfdv1.Program) error {
	ids := make([]uint64, len(programs))
	for i, p := range programs {
		ids[i] = p.GetId()
	}
	callCtx, cancel := context.WithTimeout(ctx, r.opts.CallTimeout)
	defer cancel()
	_, err := r.daemon.Unload(callCtx, &bpfdv1.UnloadRequest{Ids: ids})
	return err
}

// current reports whether have is exactly what want loads.
func current(have []*bpfdv1.Program, want []*bpfdv1.LoadRequest) bool {
	n := 0
	for _, req := range want {
		n += len(req.GetPrograms())
	}
	if len(have) != n {
		return false
	}
	for _, p := range have {
		for _, k := range []string{MetadataConfigUID, MetadataRequestHash} {
			if p.GetMetadata()[k] != want[0].GetMetadata()[k] {
				return false
			}
		}
	}
	return true
}
