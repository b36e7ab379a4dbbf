package daemon

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// TestRecovery makes handlers panic: each request fails with Internal and
// is audited, the stack is logged, and the daemon keeps serving.
func TestRecovery(t *testing.T) {
	td := newTestDaemon(t)
	panicHook = func(method string) {
		if strings.HasSuffix(method, "/List") || strings.HasSuffix(method, "/Load") {
			panic("injected fault in " + method)
		}
	}
	t.Cleanup(func() { panicHook = nil })

	_, err := td.client.List(context.Background(), &pb.ListRequest{})
	wantCode(t, err, codes.Internal, "List", "internal error")
	_, err = td.load(t, td.image(t, "xdp", true, "tracepoint_counter.bpf.o"), tracepointProg("tracepoint_counter", "syscalls/sys_enter_getpid"))
	wantCode(t, err, codes.Internal, "Load", "internal error")
	td.assertServing(t)

	logs := td.logged.String()
	for _, want := range []string{"PANIC in a request handler", "injected fault in /bpfd.v1.Bpfd/List", "recovery_linux_test.go", "goroutine "} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log does not mention %q", want)
		}
	}
	for _, action := range []string{"list", "load"} {
		if a := td.lastAudit(t, action); a["result"] != "error" || a["code"] != "Internal" {
			t.Errorf("audit line of the %s that panicked: %v, want result error, code Internal", action, a)
		}
	}

	panicHook = nil
	if _, err := td.client.List(context.Background(), &pb.ListRequest{}); err != nil {
		t.Fatalf("List after the panics: %v", err)
	}
}
