package runtime_test

import (
	"context"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// forEachMode runs fn as a subtest in each dispatcher mode the kernel
// runs: linked everywhere, freplace where extension programs work (the
// VM's kernel, where it must).
func forEachMode(t *testing.T, fn func(t *testing.T, mode runtime.DispatcherMode)) {
	for _, mode := range []runtime.DispatcherMode{runtime.DispatcherLinked, runtime.DispatcherFreplace} {
		t.Run(string(mode), func(t *testing.T) {
			if mode == runtime.DispatcherFreplace {
				requireFreplace(t)
			}
			fn(t, mode)
		})
	}
}

// requireFreplace skips t on kernels that refuse extension programs (this
// development host), and fails it instead where the required kernel
// (BPFD_REQUIRE_KERNEL, set in the VM) runs them.
func requireFreplace(t *testing.T) {
	t.Helper()
	testutil.RequirePrivileged(t)
	err := dispatcher.ProbeFreplace()
	if err == nil {
		return
	}
	if k := os.Getenv(testutil.RequireKernelEnv); k != "" && k != "0" {
		t.Fatalf("%s=%s runs extension programs, but: %v", testutil.RequireKernelEnv, k, err)
	}
	t.Skipf("freplace mode: %v", err)
}

// newModeEnv is newEnv whose Managers chain XDP and TC programs in mode.
func newModeEnv(t *testing.T, mode runtime.DispatcherMode) *env {
	e := newEnv(t)
	e.mode = mode
	return e
}

// hookEnd is one end of the veth pair: an interface and its namespace.
type hookEnd struct{ ifname, netns string }

func peerEnd(v *vethPair) hookEnd { return hookEnd{v.Peer, v.Netns} }

// loadOne loads one program and returns it.
func loadOne(t *testing.T, m *runtime.Manager, ref, name string, kind progtype.Kind, attach runtime.AttachSpec, globals map[string][]byte) runtime.Program {
	t.Helper()
	progs, err := load(context.Background(), m, ref, runtime.LoadRequest{
		Programs: []runtime.ProgramRequest{{Name: name, Kind: kind, Attach: attach}},
		Globals:  globals,
	})
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return progs[0]
}

// le32 is a __u32 or __s32 global's value.
func le32(v int32) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(v)) }

// Return values the tests' programs are loaded with.
const (
	xdpDrop = 1
	tcShot  = 2
)

// chainOf returns what the dispatcher of p's XDP or TC hook runs, read from
// its pins by a dispatcher of the test's own.
func chainOf(t *testing.T, e *env, m *runtime.Manager, p runtime.Program) dispatcher.State {
	t.Helper()
	h := dispatcher.Hook{Kind: p.Kind}
	var end hookEnd
	switch a := p.Attach.(type) {
	case runtime.XDPAttach:
		end = hookEnd{a.Interface, a.Netns}
	case runtime.TCAttach:
		end = hookEnd{a.Interface, a.Netns}
		h.Direction = dispatcher.Direction(a.Direction)
	default:
		t.Fatalf("program %d: %s programs run in no chain", p.ID, p.Kind)
	}
	h.Ifindex, h.Netns = netLink(t, end.ifname, end.netns).Attrs().Index, end.netns
	dir := filepath.Join(e.bpffs, "dispatchers", strings.ReplaceAll(p.Hook.Hook, "/", "_"))
	d, err := dispatcher.Open(h, dispatcher.Options{Mode: m.DispatcherMode(), PinDir: dir})
	if err != nil {
		t.Fatalf("open the dispatcher of %s: %v", p.Hook.Hook, err)
	}
	defer d.Close()
	return d.State()
}

// wantSlot is a program's expected place in a chain.
type wantSlot struct {
	ID        runtime.ID
	Priority  int
	ProceedOn []string
}

// assertChain checks that the hook of progs[0] runs progs, in that order,
// each with its priority and proceed-on set, in the Manager's mode: as the
// dispatcher's pins say, as the kernel runs it, and as Get reports it.
func assertChain(t *testing.T, e *env, m *runtime.Manager, progs ...runtime.Program) dispatcher.State {
	t.Helper()
	st := chainOf(t, e, m, progs[0])
	var want, got []wantSlot
	for _, p := range progs {
		want = append(want, wantSlot{p.ID, p.Hook.Priority, proceedOnOf(p.Attach)})
	}
	for _, s := range st.Slots {
		got = append(got, wantSlot{runtime.ID(s.ID), s.Priority, s.ProceedOn.Names(progs[0].Kind)})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("chain of %s (-want +got):\n%s", progs[0].Hook.Hook, diff)
	}
	// A lone program runs on its own, with no dispatcher.
	wantMode, hookMode := dispatcher.ChainMode(m.DispatcherMode(), len(progs)), m.DispatcherMode()
	if wantMode == dispatcher.ModeDirect {
		hookMode = ""
	}
	if st.Mode != wantMode {
		t.Errorf("chain built in mode %q, want %q", st.Mode, wantMode)
	}
	end := attachEnd(progs[0].Attach)
	if got := hookPrograms(t, progs[0].Kind, end, directionOf(progs[0].Attach)); !slices.Equal(got, []uint32{uint32(st.ProgramID)}) {
		t.Errorf("the hook runs programs %v, want the chain's %d", got, st.ProgramID)
	}
	for i, p := range progs {
		got, err := m.Get(context.Background(), p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if h := got.Hook; h == nil || h.Position != i || h.Mode != hookMode || h.Priority != p.Hook.Priority {
			t.Errorf("program %d: hook %+v, want position %d, priority %d, mode %q", p.ID, h, i, p.Hook.Priority, hookMode)
		}
		switch {
		case got.Kernel == nil:
			t.Errorf("program %d: no kernel info", p.ID)
		case wantMode == dispatcher.ModeDirect && (got.Kernel.ProgramID != uint32(st.ProgramID) || got.Kernel.Name != p.Name):
			t.Errorf("program %d: kernel program %d (%s), want itself, %d, the program the hook runs", p.ID, got.Kernel.ProgramID, got.Kernel.Name, st.ProgramID)
		case wantMode == runtime.DispatcherLinked && got.Kernel.ProgramID != uint32(st.ProgramID):
			t.Errorf("program %d: kernel program %d, want the linked chain's %d", p.ID, got.Kernel.ProgramID, st.ProgramID)
		case wantMode == runtime.DispatcherFreplace && got.Kernel.ProgramID != uint32(st.Slots[i].ProgramID):
			t.Errorf("program %d: kernel program %d, want its extension program %d", p.ID, got.Kernel.ProgramID, st.Slots[i].ProgramID)
		}
	}
	return st
}

func proceedOnOf(a runtime.AttachSpec) []string {
	switch a := a.(type) {
	case runtime.XDPAttach:
		return a.ProceedOn
	case runtime.TCAttach:
		return a.ProceedOn
	}
	return nil
}

func attachEnd(a runtime.AttachSpec) hookEnd {
	switch a := a.(type) {
	case runtime.XDPAttach:
		return hookEnd{a.Interface, a.Netns}
	case runtime.TCAttach:
		return hookEnd{a.Interface, a.Netns}
	case runtime.TCXAttach:
		return hookEnd{a.Interface, a.Netns}
	}
	return hookEnd{}
}

func directionOf(a runtime.AttachSpec) runtime.Direction {
	switch a := a.(type) {
	case runtime.TCAttach:
		return a.Direction
	case runtime.TCXAttach:
		return a.Direction
	}
	return ""
}

// hookPrograms returns the kernel ids of the programs on an interface's XDP
// hook, or on one direction of its TC hook (cls_bpf filters, and TCX where
// the kernel has it).
func hookPrograms(t *testing.T, kind progtype.Kind, end hookEnd, dir runtime.Direction) []uint32 {
	t.Helper()
	if kind == progtype.XDP {
		if id := xdpProgID(t, end.ifname, end.netns); id != 0 {
			return []uint32{id}
		}
		return nil
	}
	ids := tcFilterProgIDs(t, end.ifname, end.netns, dir)
	if testutil.KernelHas(testutil.FeatureTCX) == nil {
		ids = append(ids, tcxProgIDs(t, end.ifname, end.netns, dir)...)
	}
	return ids
}

// globalU64 reads the __u64 global at the start of a program's .bss.
func globalU64(t *testing.T, p runtime.Program) uint64 {
	t.Helper()
	return testutil.ReadU64(t, mapPin(t, p, ".bss"), 0)
}

// udpCount reads the UDP packets xdp_counter or tc_counter counted.
func udpCount(t *testing.T, p runtime.Program) uint64 {
	t.Helper()
	name := "xdp_stats"
	if p.Kind != progtype.XDP {
		name = "tc_stats"
	}
	return testutil.ReadU64(t, mapPin(t, p, name), udp)
}

// udpListener receives UDP datagrams on the peer's port 9 and counts them.
type udpListener struct {
	conn net.PacketConn
	mu   sync.Mutex
	n    int
	done chan struct{}
}

// listenPeer starts counting datagrams that reach the peer's port 9.
func listenPeer(t *testing.T, v *vethPair) *udpListener {
	t.Helper()
	l := &udpListener{done: make(chan struct{})}
	err := inNetns(v.Netns, func() error {
		var err error
		l.conn, err = net.ListenPacket("udp4", net.JoinHostPort(v.PeerIP.String(), "9"))
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", v.Netns, err)
	}
	go func() {
		defer close(l.done)
		buf := make([]byte, 64)
		for {
			if _, _, err := l.conn.ReadFrom(buf); err != nil {
				return
			}
			l.mu.Lock()
			l.n++
			l.mu.Unlock()
		}
	}()
	t.Cleanup(l.close)
	return l
}

func (l *udpListener) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

func (l *udpListener) close() {
	if l.conn.Close() == nil {
		<-l.done
	}
}

// sender sends UDP datagrams from the host end to the peer until stopped.
type sender struct {
	stop chan struct{}
	done chan struct{}
	sent int
	err  error
}

func startSending(t *testing.T, v *vethPair) *sender {
	t.Helper()
	c, err := net.ListenPacket("udp4", net.JoinHostPort(v.HostIP.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	s := &sender{stop: make(chan struct{}), done: make(chan struct{})}
	to := &net.UDPAddr{IP: v.PeerIP, Port: 9}
	go func() {
		defer close(s.done)
		defer c.Close()
		for {
			select {
			case <-s.stop:
				return
			default:
			}
			for range 20 {
				if _, err := c.WriteTo([]byte("bpfd chain"), to); err != nil {
					s.err = err
					return
				}
				s.sent++
			}
			time.Sleep(time.Millisecond) // the veth's queue is 256 frames
		}
	}()
	return s
}

// finish stops sending and returns how many datagrams were sent.
func (s *sender) finish(t *testing.T) int {
	t.Helper()
	close(s.stop)
	<-s.done
	if s.err != nil {
		t.Fatalf("send: %v", s.err)
	}
	return s.sent
}
