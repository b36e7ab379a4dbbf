package upgrade

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// TestRestartUnderTraffic is what a rolling update of the DaemonSet, or a
// crash, does to a node: this bpfd is stopped (SIGTERM, as the kubelet
// stops a container, or SIGKILL, as it ends one that outlives its grace
// period or as a crash does) while packets flow through an XDP and a TCX
// program it loaded, and started again after a time without any bpfd.
// Every packet sent was counted by both programs, and bpfd adopts both
// without reloading: the same ids, kernel programs and pins.
func TestRestartUnderTraffic(t *testing.T) {
	testutil.RequirePrivileged(t)
	testutil.RequireKernelFeature(t, testutil.FeatureTCX)
	bins := currentBins(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			n := newNode(t)
			xdpRef := n.image(t, "xdp", "xdp_counter.bpf.o")
			tcRef := n.image(t, "tc", "tc_counter.bpf.o")
			v := testutil.NewVethPair(t)
			b := n.start(t, bins)
			n.bpfctl(t, bins, "load", "image", xdpRef, "-p", "xdp_counter:xdp", "-i", v.Host, "--priority", "10")
			n.bpfctl(t, bins, "load", "image", tcRef, "-p", "tcx_counter:tcx", "-i", v.Host, "--direction", "ingress")
			before := n.list(t, bins)
			if len(before) != 2 {
				t.Fatalf("%d programs listed, want 2: %+v", len(before), before)
			}
			var pins []string
			for _, p := range before {
				name := map[string]string{"xdp": "xdp_stats", "tcx": "tc_stats"}[p.Type]
				pins = append(pins, mapPin(t, p, name))
			}
			counts := func() []uint64 {
				var c []uint64
				for _, pin := range pins {
					c = append(c, testutil.ReadU64(t, pin, udp))
				}
				return c
			}
			start := counts()
			traffic := v.StartUDPFromPeer(t, time.Millisecond)
			time.Sleep(100 * time.Millisecond)
			b.stop(t, sig)
			time.Sleep(300 * time.Millisecond) // the container's restart: no bpfd
			b = n.start(t, bins)
			time.Sleep(100 * time.Millisecond)
			sent := traffic.Stop(t)

			if diff := cmp.Diff(before, n.list(t, bins)); diff != "" {
				t.Errorf("programs after the restart (-before +after):\n%s", diff)
			}
			// A killed bpfd leaves its socket behind, which the next one
			// removes; nothing else may be removed, rebuilt or warned of.
			for _, line := range strings.Split(b.log(), "\n") {
				if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") || strings.Contains(line, "rebuilt") ||
					(strings.Contains(line, "removed") && !strings.Contains(line, "removed a stale socket")) {
					t.Errorf("bpfd changed something while adopting: %s", line)
				}
			}
			waitCounts(t, counts, start, sent)
			t.Logf("%d packets sent across the restart after %v, every one counted by both programs", sent, sig)
			ids := []string{"unload"}
			for _, p := range before {
				ids = append(ids, strconv.FormatUint(p.ID, 10))
			}
			n.bpfctl(t, bins, ids...)
			b.stop(t, syscall.SIGTERM)
		})
	}
}
