package daemon

import (
	"path"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// streamInterceptor does for streaming calls (Top) what interceptor does
// for the others: it checks the client against the allowed uids and gids,
// writes the call's audit line when it ends and counts it in the metrics.
func (s *server) streamInterceptor(acc access) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		method := path.Base(info.FullMethod)
		ctx := ss.Context()
		who, err := requester(ctx)
		switch {
		case err != nil:
			err = status.Errorf(codes.Unauthenticated, "%s: %v", method, err)
		case !acc.allows(who) && !strings.HasPrefix(info.FullMethod, "/grpc.health."):
			s.log.Warn("request refused: client not allowed", "method", method, "uid", who.UID, "gid", who.GID, "pid", who.PID)
			err = status.Errorf(codes.PermissionDenied, "uid %d gid %d: %v to use bpfd (see socket.allowedUIDs and allowedGIDs)", who.UID, who.GID, ErrPermissionDenied)
		default:
			err = handler(srv, ss)
		}
		if a, ok := auditActions[method]; ok {
			s.audit.write(ctx, auditRecord{Action: a.action, Peer: who, Err: err})
		}
		code := status.Code(err)
		s.metrics.request(method, code.String())
		if err != nil {
			s.log.Debug("request failed", "method", method, "uid", who.UID, "pid", who.PID, "code", code.String(), "error", status.Convert(err).Message())
		}
		return err
	}
}
