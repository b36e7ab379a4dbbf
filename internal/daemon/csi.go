package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bpfd-dev/bpfd/internal/csi"
	"github.com/bpfd-dev/bpfd/internal/peercred"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

// csiPrograms gives the CSI driver the runtime's programs, each with the
// config, tenant namespace and map reader namespaces of its recorded
// owner.
type csiPrograms struct {
	manager *runtime.Manager
	// judged waits for the judgement of the programs adopted at start,
	// and refuses those still not judged after it: their maps are
	// published into pods, which would keep them past a revocation.
	judged func(ctx context.Context, what string, ids ...runtime.ID) error
}

var _ csi.Programs = csiPrograms{}

func (c csiPrograms) LoadedPrograms(ctx context.Context) ([]csi.Program, error) {
	if err := c.judged(ctx, "csi"); err != nil {
		return nil, err
	}
	progs, err := c.manager.List(ctx, runtime.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]csi.Program, 0, len(progs))
	for _, p := range progs {
		if c.judged(ctx, "csi", p.ID) != nil {
			continue // not judged: not published
		}
		cp := csi.Program{ID: uint64(p.ID), MapOwnerID: uint64(p.MapOwnerID)}
		cp.Config, cp.Namespace, cp.ReaderNamespaces = ownerOf(p)
		for _, m := range p.Maps {
			cp.Maps = append(cp.Maps, csi.Map{Name: m.Name, ID: m.ID, PinPath: m.PinPath})
		}
		out = append(out, cp)
	}
	return out, nil
}

// serveCSI serves the CSI driver on its socket until ctx ends. Only root
// may call it: the kubelet and the node-driver-registrar.
func (d *Daemon) serveCSI(ctx context.Context, l net.Listener) error {
	gs := grpc.NewServer(
		grpc.Creds(peercred.TransportCredentials()),
		grpc.MaxRecvMsgSize(1<<20),
		grpc.ChainUnaryInterceptor(rootOnly(d.log)),
	)
	d.csi.Register(gs)
	go func() {
		<-ctx.Done()
		gs.GracefulStop()
	}()
	if err := gs.Serve(l); err != nil {
		return fmt.Errorf("csi: %w", err)
	}
	return nil
}

// rootOnly refuses every call of a client other than uid 0.
func rootOnly(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		who, err := client(ctx)
		if err != nil {
			return nil, status.Errorf(codes.Unauthenticated, "%s: %v", path.Base(info.FullMethod), err)
		}
		if who.UID != 0 {
			log.Warn("CSI request refused: client not root", "method", path.Base(info.FullMethod), "uid", who.UID, "pid", who.PID)
			return nil, status.Errorf(codes.PermissionDenied, "uid %d: only root (the kubelet) may call %s", who.UID, csi.DriverName)
		}
		return handler(ctx, req)
	}
}
