package dispatcher_test

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// testNet is a veth pair in a network namespace of its own: frames sent out
// of tx arrive at rx.
type testNet struct {
	// netns is the namespace's path, for Hook.Netns.
	netns string
	// rx is the receiving end's index; tx the sending end's.
	rx, tx int
	rxMAC  net.HardwareAddr
	txMAC  net.HardwareAddr
	// sock is a packet socket in the namespace, bound to tx.
	sock int
}

// newTestNet creates a namespace with a random name and a veth pair in it,
// both removed when the test ends.
func newTestNet(t *testing.T) *testNet {
	t.Helper()
	name := "bpfd-disp-" + strings.ToLower(rand.Text()[:8])
	var ns netns.NsHandle
	err := inThread(func() error {
		origin, err := netns.Get()
		if err != nil {
			return err
		}
		defer origin.Close()
		if ns, err = netns.NewNamed(name); err != nil {
			return fmt.Errorf("create netns %s: %w", name, err)
		}
		// No IPv6 on the interfaces to come: they would send router and
		// multicast listener solicitations, which the programs would count.
		err = os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("disable IPv6 in netns %s: %w", name, err)
		}
		return netns.Set(origin)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	n := &testNet{netns: filepath.Join("/run/netns", name)}

	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "rx"}, PeerName: "tx"}
	if err := h.LinkAdd(veth); err != nil {
		t.Fatalf("create veth pair in %s: %v", name, err)
	}
	for _, end := range []string{"rx", "tx"} {
		l, err := h.LinkByName(end)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatalf("set %s up: %v", end, err)
		}
	}
	// Frames sent before the carrier is up are dropped.
	deadline := time.Now().Add(5 * time.Second)
	for {
		rx, err1 := h.LinkByName("rx")
		tx, err2 := h.LinkByName("tx")
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if rx.Attrs().OperState == netlink.OperUp && tx.Attrs().OperState == netlink.OperUp {
			n.rx, n.rxMAC = rx.Attrs().Index, rx.Attrs().HardwareAddr
			n.tx, n.txMAC = tx.Attrs().Index, tx.Attrs().HardwareAddr
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("veth pair in %s not up after 5s", name)
		}
		time.Sleep(10 * time.Millisecond)
	}

	err = inThread(func() error {
		if err := netns.Set(ns); err != nil {
			return err
		}
		// Sockets belong to the namespace they were created in; the thread
		// dies with its goroutine rather than go back.
		n.sock, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		return err
	})
	if err != nil {
		t.Fatalf("packet socket in %s: %v", name, err)
	}
	t.Cleanup(func() { unix.Close(n.sock) })
	return n
}

// inThread runs fn on a goroutine locked to a thread that exits with it, so
// that whatever fn does to the thread (its namespace) goes with it.
func inThread(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		done <- fn()
	}()
	return <-done
}

// experimentalProto is an IP protocol number reserved for experiments (RFC
// 3692): xdp_counter and tc_counter count it at its own index.
const experimentalProto = 253

// frame returns an Ethernet frame from tx to rx carrying an IPv4 header of
// protocol experimentalProto (192.0.2.1 -> 192.0.2.2, documentation
// addresses) and no payload.
func (n *testNet) frame() []byte {
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	ip[8] = 64
	ip[9] = experimentalProto
	copy(ip[12:], net.IPv4(192, 0, 2, 1).To4())
	copy(ip[16:], net.IPv4(192, 0, 2, 2).To4())
	var sum uint32
	for i := 0; i < len(ip); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	sum = sum>>16 + sum&0xffff
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum+sum>>16))
	f := append(append([]byte{}, n.rxMAC...), n.txMAC...)
	f = binary.BigEndian.AppendUint16(f, unix.ETH_P_IP)
	return append(f, ip...)
}

// send sends count frames out of tx.
func (n *testNet) send(t testing.TB, count int) {
	t.Helper()
	if err := n.sendErr(count); err != nil {
		t.Fatal(err)
	}
}

func (n *testNet) sendErr(count int) error {
	f := n.frame()
	addr := &unix.SockaddrLinklayer{Ifindex: n.tx}
	for sent := 0; sent < count; {
		err := unix.Sendto(n.sock, f, 0, addr)
		switch {
		case err == unix.ENOBUFS:
			time.Sleep(time.Millisecond) // the device queue is full: retry
		case err != nil:
			return fmt.Errorf("send a frame out of tx: %w", err)
		default:
			sent++
		}
	}
	return nil
}

// eventually waits up to five seconds for cond to hold.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 5s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// deleteVeth deletes the veth pair.
func (n *testNet) deleteVeth(t testing.TB) {
	t.Helper()
	ns, err := netns.GetFromPath(n.netns)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByIndex(n.rx)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkDel(l); err != nil {
		t.Fatalf("delete veth pair: %v", err)
	}
}
