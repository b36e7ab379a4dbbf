package runtime_test

import (
	"context"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

func TestXDPCountsPackets(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	v := newVethPair(t)
	ctx := context.Background()

	progs, err := load(ctx, m, "file:xdp_counter.bpf.o", runtime.LoadRequest{
		Programs: []runtime.ProgramRequest{{
			Name:   "xdp_counter",
			Kind:   progtype.XDP,
			Attach: runtime.XDPAttach{Interface: v.Peer, Netns: v.Netns},
		}},
		Metadata:  map[string]string{"app": "test"},
		Requester: runtime.Requester{UID: 0, GID: 0, PID: 1},
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	p := progs[0]
	t.Logf("loaded %+v kernel %+v", p, p.Kernel)
	assertChain(t, e, m, p)
	v.SendUDP(t, 20)
	pin := mapPin(t, p, "xdp_stats")
	eventually(t, "20 UDP packets counted", func() bool { return testutil.ReadU64(t, pin, 17) >= 20 })

	if err := m.Unload(ctx, p.ID); err != nil {
		t.Fatalf("Unload: %v", err)
	}
	assertEmpty(t, e, m)
	assertNoAttachments(t, v)
}
