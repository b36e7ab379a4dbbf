package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"runtime/debug"

	"google.golang.org/grpc"
)

// errPanicked: a handler panicked. The request fails with Internal; bpfd
// keeps serving.
var errPanicked = errors.New("internal error: the request's handler failed (a bug in bpfd; its log has the stack)")

// panicHook, when set, is called before each handler, inside recovery's
// reach; tests set it to make a handler panic.
var panicHook func(method string)

// recovery turns a panic in a handler into errPanicked, logged with the
// stack, so that one bad request never takes the daemon down. It runs
// inside the access interceptor, which audits and counts the failed call.
func recovery(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("PANIC in a request handler: the request fails, bpfd keeps serving",
					"method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				resp, err = nil, fmt.Errorf("%s: %w", path.Base(info.FullMethod), errPanicked)
			}
		}()
		if panicHook != nil {
			panicHook(info.FullMethod)
		}
		return handler(ctx, req)
	}
}
