package runtime_test

import (
	"context"
	"sync"
	"testing"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

// TestConcurrentClients runs many loads, unloads and lists at once, on
// shared and separate hooks (the XDP and TC hooks' chains are rebuilt by
// each): each call succeeds, and nothing is left after.
func TestConcurrentClients(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	v := newVethPair(t)
	ctx := context.Background()
	// The host end's egress runs TCX programs, or tc filters on kernels
	// without TCX.
	egress := runtime.ProgramRequest{Name: "tcx_counter", Kind: progtype.TCX, Attach: runtime.TCXAttach{Interface: v.Host, Direction: runtime.Egress}}
	if !kernelHasTCX(t) {
		egress = runtime.ProgramRequest{Name: "tc_counter", Kind: progtype.TC, Attach: runtime.TCAttach{Interface: v.Host, Direction: runtime.Egress}}
	}
	fds := openFDs(t)

	requests := []fileLoad{
		{"file:tracepoint_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
			{Name: "tracepoint_counter", Kind: progtype.Tracepoint, Attach: runtime.TracepointAttach{Tracepoint: "syscalls/sys_enter_getpid"}}}}},
		{"file:tc_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{egress}}},
		{"file:tc_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
			{Name: "tc_counter", Kind: progtype.TC, Attach: runtime.TCAttach{Interface: v.Peer, Netns: v.Netns, Direction: runtime.Ingress}}}}},
		{"file:xdp_counter.bpf.o", runtime.LoadRequest{Programs: []runtime.ProgramRequest{
			{Name: "xdp_counter", Kind: progtype.XDP, Attach: runtime.XDPAttach{Interface: v.Peer, Netns: v.Netns}}}}},
	}
	const clients, rounds = 8, 12
	var wg sync.WaitGroup
	errs := make(chan error, clients*rounds)
	for c := range clients {
		wg.Go(func() {
			for r := range rounds {
				req := requests[(c+r)%len(requests)]
				progs, err := load(ctx, m, req.ref, req.req)
				if err != nil {
					errs <- err
					return
				}
				if _, err := m.List(ctx, runtime.ListOptions{}); err != nil {
					errs <- err
					return
				}
				if err := m.Unload(ctx, progs[0].ID); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assertOnly(t, e, m, fds)
	assertNoAttachments(t, v)
}
