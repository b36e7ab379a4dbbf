package kerneltest

import (
	"crypto/rand"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// experimentalProto is an IP protocol number reserved for experiments (RFC
// 3692): nothing but this test sends it, so its count is exact.
const experimentalProto = 253

// TestXDPCountsVethTraffic attaches xdp_counter in driver mode to one end of a
// veth pair, sends IPv4 frames into the other end and waits for the program to
// have counted each of them.
func TestXDPCountsVethTraffic(t *testing.T) {
	testutil.RequireKernelFeature(t, testutil.FeatureXDPLink)
	tx, rx := vethPair(t)
	coll := newCollection(t, loadSpec(t, "xdp_counter"))
	l, err := link.AttachXDP(link.XDPOptions{
		Program:   coll.Programs["xdp_counter"],
		Interface: rx.Attrs().Index,
		Flags:     link.XDPDriverMode,
	})
	if err != nil {
		t.Fatalf("attach xdp_counter to %s: %v", rx.Attrs().Name, err)
	}
	defer l.Close()

	const n = 10
	sendFrames(t, tx, rx.Attrs().HardwareAddr, ipv4Packet(experimentalProto), n)

	stats := coll.Maps["xdp_stats"]
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := counter(t, stats, experimentalProto)
		if got == n {
			return
		}
		if got > n || time.Now().After(deadline) {
			t.Fatalf("xdp_counter counted %d of %d frames sent through the veth pair", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// vethPair creates a veth pair with random names, deleted at cleanup, and
// waits until both ends are up.
func vethPair(t *testing.T) (netlink.Link, netlink.Link) {
	t.Helper()
	name := "bpfdkt" + strings.ToLower(rand.Text()[:6])
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name + "a"}, PeerName: name + "b"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("create veth pair %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := netlink.LinkDel(veth); err != nil {
			t.Errorf("delete veth pair %s: %v", name, err)
		}
	})
	ends := []string{name + "a", name + "b"}
	for _, n := range ends {
		if err := netlink.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: n}}); err != nil {
			t.Fatalf("set %s up: %v", n, err)
		}
	}
	// The kernel attaches a device's queueing discipline when it reports the
	// carrier, a moment after "up"; frames sent before that are dropped.
	var links []netlink.Link
	for _, n := range ends {
		deadline := time.Now().Add(5 * time.Second)
		for {
			l, err := netlink.LinkByName(n)
			if err != nil {
				t.Fatal(err)
			}
			if l.Attrs().OperState == netlink.OperUp {
				links = append(links, l)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still %s after 5s", n, l.Attrs().OperState)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return links[0], links[1]
}

// ipv4Packet returns a minimal IPv4 header (192.0.2.1 -> 192.0.2.2, RFC 5737
// documentation addresses) carrying protocol proto and no payload.
func ipv4Packet(proto byte) []byte {
	ip := make([]byte, 20)
	ip[0] = 0x45 // version 4, 5 words of header
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	ip[8] = 64 // TTL
	ip[9] = proto
	copy(ip[12:], net.IPv4(192, 0, 2, 1).To4())
	copy(ip[16:], net.IPv4(192, 0, 2, 2).To4())
	var sum uint32
	for i := 0; i < len(ip); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	sum = sum>>16 + sum&0xffff
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum+sum>>16))
	return ip
}

// sendFrames sends payload as an IPv4 Ethernet frame to dst out of tx, n times,
// through a packet socket.
func sendFrames(t *testing.T, tx netlink.Link, dst net.HardwareAddr, payload []byte, n int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0) // protocol 0: send only
	if err != nil {
		t.Fatalf("packet socket: %v", err)
	}
	defer unix.Close(fd)
	frame := make([]byte, 0, 14+len(payload))
	frame = append(frame, dst...)
	frame = append(frame, tx.Attrs().HardwareAddr...)
	frame = binary.BigEndian.AppendUint16(frame, unix.ETH_P_IP)
	frame = append(frame, payload...)
	addr := &unix.SockaddrLinklayer{Ifindex: tx.Attrs().Index}
	for range n {
		if err := unix.Sendto(fd, frame, 0, addr); err != nil {
			t.Fatalf("send frame out of %s: %v", tx.Attrs().Name, err)
		}
	}
}
