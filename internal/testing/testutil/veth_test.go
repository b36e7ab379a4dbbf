package testutil

import (
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func TestVethPair(t *testing.T) {
	v := NewVethPair(t)
	ns, err := netns.GetFromPath(v.Netns)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	peer, err := h.LinkByName(v.Peer)
	if err != nil {
		t.Fatalf("peer %s in %s: %v", v.Peer, v.Netns, err)
	}
	before := peer.Attrs().Statistics.RxPackets
	v.SendUDP(t, 20)
	peer, _ = h.LinkByName(v.Peer)
	if got := peer.Attrs().Statistics.RxPackets - before; got < 20 {
		t.Errorf("peer received %d packets, want at least 20", got)
	}
}

func TestVethPairSendFromPeer(t *testing.T) {
	v := NewVethPair(t)
	host, err := netlink.LinkByName(v.Host)
	if err != nil {
		t.Fatal(err)
	}
	before := host.Attrs().Statistics.RxPackets
	v.SendUDPFromPeer(t, 20)
	host, _ = netlink.LinkByName(v.Host)
	if got := host.Attrs().Statistics.RxPackets - before; got < 20 {
		t.Errorf("host end received %d packets, want at least 20", got)
	}
}

func TestVethPairTrafficFromPeer(t *testing.T) {
	v := NewVethPair(t)
	host, err := netlink.LinkByName(v.Host)
	if err != nil {
		t.Fatal(err)
	}
	before := host.Attrs().Statistics.RxPackets
	tr := v.StartUDPFromPeer(t, time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	sent := tr.Stop(t)
	if sent < 10 {
		t.Fatalf("%d datagrams sent in 100ms at one a millisecond", sent)
	}
	if again := tr.Stop(t); again != 0 {
		t.Errorf("second Stop: %d, want 0", again)
	}
	host, _ = netlink.LinkByName(v.Host)
	if got := host.Attrs().Statistics.RxPackets - before; got < uint64(sent) {
		t.Errorf("host end received %d packets, %d were sent", got, sent)
	}
}
