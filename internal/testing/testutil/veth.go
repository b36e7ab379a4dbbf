package testutil

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// VethPair is a veth pair made for one test: Host stays in the test's network
// namespace, Peer lives in a named namespace the test created (at Netns, like
// `ip netns add`), each with an address in a random 10.x.y.0/30. Everything is
// removed at the end of the test. It needs only the kernel, not iproute2, so
// it works in the test VM too.
type VethPair struct {
	Host, Peer     string
	Netns          string // path of the peer's namespace, /run/netns/NAME
	NetnsName      string
	HostIP, PeerIP net.IP
}

// NewVethPair creates a VethPair; tb fails when the kernel refuses any step.
func NewVethPair(tb testing.TB) *VethPair {
	tb.Helper()
	RequirePrivileged(tb)
	id := RandomSuffix(6)
	b := make([]byte, 2)
	rand.Read(b)
	v := &VethPair{
		Host:      "bpfd" + id + "h",
		Peer:      "bpfd" + id + "p",
		NetnsName: "bpfdt-" + id,
		HostIP:    net.IPv4(10, 100+b[0]%150, b[1], 1),
		PeerIP:    net.IPv4(10, 100+b[0]%150, b[1], 2),
	}
	v.Netns = "/run/netns/" + v.NetnsName
	if err := v.create(tb); err != nil {
		tb.Fatalf("veth pair %s/%s: %v", v.Host, v.Peer, err)
	}
	return v
}

func (v *VethPair) create(tb testing.TB) error {
	ns, err := newNamedNetns(v.NetnsName)
	if err != nil {
		return fmt.Errorf("netns %s: %w", v.NetnsName, err)
	}
	defer ns.Close()
	tb.Cleanup(func() { netns.DeleteNamed(v.NetnsName) })

	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: v.Host}, PeerName: v.Peer, PeerNamespace: netlink.NsFd(ns)}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("add: %w", err)
	}
	tb.Cleanup(func() {
		if l, err := netlink.LinkByName(v.Host); err == nil {
			netlink.LinkDel(l)
		}
	})
	peerNS, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer peerNS.Close()
	host, err := netlink.LinkByName(v.Host)
	if err != nil {
		return err
	}
	peer, err := peerNS.LinkByName(v.Peer)
	if err != nil {
		return err
	}
	lo, err := peerNS.LinkByName("lo")
	if err != nil {
		return err
	}
	mask := net.CIDRMask(30, 32)
	steps := []func() error{
		func() error { return netlink.AddrAdd(host, &netlink.Addr{IPNet: &net.IPNet{IP: v.HostIP, Mask: mask}}) },
		func() error { return peerNS.AddrAdd(peer, &netlink.Addr{IPNet: &net.IPNet{IP: v.PeerIP, Mask: mask}}) },
		func() error { return netlink.LinkSetUp(host) },
		func() error { return peerNS.LinkSetUp(peer) },
		func() error { return peerNS.LinkSetUp(lo) },
		// A permanent neighbour entry, so traffic to the peer flows even
		// when a program under test drops ARP.
		func() error {
			return netlink.NeighSet(&netlink.Neigh{LinkIndex: host.Attrs().Index, IP: v.PeerIP, HardwareAddr: peer.Attrs().HardwareAddr, State: netlink.NUD_PERMANENT})
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	// The kernel attaches the queues a moment after the link is up; frames
	// sent before that are dropped silently.
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := netlink.LinkByName(v.Host)
		if err == nil && l.Attrs().OperState == netlink.OperUp {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not up after 5s", v.Host)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newNamedNetns creates a network namespace bind-mounted at /run/netns/name
// without moving the calling goroutine's thread into it.
func newNamedNetns(name string) (netns.NsHandle, error) {
	type result struct {
		ns  netns.NsHandle
		err error
	}
	done := make(chan result, 1)
	go func() {
		// The thread enters the new namespace; it is never unlocked, so the
		// Go runtime retires it when this goroutine ends.
		runtime.LockOSThread()
		ns, err := netns.NewNamed(name)
		done <- result{ns, err}
	}()
	r := <-done
	return r.ns, r.err
}

// SendUDP sends n datagrams from the host end to the peer's address. The
// socket is unconnected, so the peer's ICMP port-unreachable replies do not
// fail later sends.
func (v *VethPair) SendUDP(tb testing.TB, n int) {
	tb.Helper()
	c, err := net.ListenPacket("udp4", net.JoinHostPort(v.HostIP.String(), "0"))
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	to := &net.UDPAddr{IP: v.PeerIP, Port: 9}
	for range n {
		if _, err := c.WriteTo([]byte("bpfd test"), to); err != nil {
			tb.Fatalf("send to %s: %v", to, err)
		}
	}
}

// SendUDPFromPeer sends n datagrams from the peer's end, inside its
// namespace, to the host end's address: traffic that arrives on Host.
func (v *VethPair) SendUDPFromPeer(tb testing.TB, n int) {
	tb.Helper()
	done := make(chan error, 1)
	go func() {
		// The thread enters the peer's namespace, where the socket is
		// made; it is never unlocked, so the Go runtime retires it when
		// this goroutine ends.
		runtime.LockOSThread()
		done <- v.sendFromPeer(n)
	}()
	if err := <-done; err != nil {
		tb.Fatalf("send from %s in %s: %v", v.Peer, v.Netns, err)
	}
}

func (v *VethPair) sendFromPeer(n int) error {
	c, err := v.peerSocket()
	if err != nil {
		return err
	}
	defer c.Close()
	to := &net.UDPAddr{IP: v.HostIP, Port: 9}
	for range n {
		if _, err := c.WriteTo([]byte("bpfd test"), to); err != nil {
			return fmt.Errorf("send to %s: %w", to, err)
		}
	}
	return nil
}

// Traffic is a stream of UDP datagrams from a VethPair's peer end to its
// host end, one every interval, until Stop.
type Traffic struct {
	stop chan struct{}
	done chan trafficResult
}

type trafficResult struct {
	sent int
	err  error
}

// StartUDPFromPeer starts sending a datagram from the peer's end, inside
// its namespace, to the host end's address every interval: traffic that
// arrives on Host while the test does something else. Stop ends it.
func (v *VethPair) StartUDPFromPeer(tb testing.TB, interval time.Duration) *Traffic {
	tb.Helper()
	tr := &Traffic{stop: make(chan struct{}), done: make(chan trafficResult, 1)}
	started := make(chan error, 1)
	go func() {
		// As in SendUDPFromPeer, the thread stays in the peer's namespace
		// and is retired with the goroutine.
		runtime.LockOSThread()
		c, err := v.peerSocket()
		started <- err
		if err != nil {
			return
		}
		defer c.Close()
		to := &net.UDPAddr{IP: v.HostIP, Port: 9}
		tick := time.NewTicker(interval)
		defer tick.Stop()
		n := 0
		for {
			select {
			case <-tr.stop:
				tr.done <- trafficResult{sent: n}
				return
			case <-tick.C:
			}
			if _, err := c.WriteTo([]byte("bpfd test"), to); err != nil {
				tr.done <- trafficResult{sent: n, err: fmt.Errorf("send to %s after %d datagrams: %w", to, n, err)}
				return
			}
			n++
		}
	}()
	if err := <-started; err != nil {
		tb.Fatalf("send from %s in %s: %v", v.Peer, v.Netns, err)
	}
	return tr
}

// Stop ends the stream and returns how many datagrams were sent; tb fails
// when a send failed. Stopping again returns 0.
func (tr *Traffic) Stop(tb testing.TB) int {
	tb.Helper()
	select {
	case <-tr.stop:
		return 0
	default:
		close(tr.stop)
	}
	r := <-tr.done
	if r.err != nil {
		tb.Fatal(r.err)
	}
	return r.sent
}

// peerSocket enters the peer's namespace on the calling (locked) thread
// and opens a UDP socket on the peer's address there.
func (v *VethPair) peerSocket() (net.PacketConn, error) {
	ns, err := netns.GetFromPath(v.Netns)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	if err := netns.Set(ns); err != nil {
		return nil, err
	}
	return net.ListenPacket("udp4", net.JoinHostPort(v.PeerIP.String(), "0"))
}

// RandomSuffix returns n random hex digits, for names that must not collide
// with those of tests running at the same time.
func RandomSuffix(n int) string {
	b := make([]byte, (n+1)/2)
	rand.Read(b)
	return hex.EncodeToString(b)[:n]
}
