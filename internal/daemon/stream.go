package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"path"
	"runtime/debug"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// streamInterceptor does for streaming calls (Top) what interceptor does
// for the others: it checks the client against the allowed uids and gids,
// writes the call's audit line when it ends and counts it in the metrics.
func (s *server) streamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		method := path.Base(info.FullMethod)
		ctx := ss.Context()
		who, err := client(ctx)
		switch {
		case err != nil:
			err = status.Errorf(codes.Unauthenticated, "%s: %v", method, err)
		case !s.access.allows(who) && !strings.HasPrefix(info.FullMethod, "/grpc.health."):
			s.log.Warn("request refused: client not allowed", "method", method, "uid", who.UID, "gid", who.GID, "pid", who.PID)
			err = toStatus(fmt.Errorf("uid %d gid %d: %w to use bpfd (see socket.allowedUIDs and allowedGIDs)", who.UID, who.GID, ErrPermissionDenied))
		default:
			err = handler(srv, ss)
			if errors.Is(err, errPanicked) {
				err = toStatus(err)
			}
		}
		if a, ok := auditActions[method]; ok {
			s.audit.write(ctx, auditRecord{Action: a.action, Peer: requesterOf(who), Err: err})
		}
		code := status.Code(err)
		s.metrics.request(method, code.String())
		if err != nil {
			s.log.Debug("request failed", "method", method, "uid", who.UID, "pid", who.PID, "code", code.String(), "error", status.Convert(err).Message())
		}
		return err
	}
}

// streamRecovery is recovery for streaming calls.
func streamRecovery(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("PANIC in a request handler: the request fails, bpfd keeps serving",
					"method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = fmt.Errorf("%s: %w", path.Base(info.FullMethod), errPanicked)
			}
		}()
		if panicHook != nil {
			panicHook(info.FullMethod)
		}
		return handler(srv, ss)
	}
}
