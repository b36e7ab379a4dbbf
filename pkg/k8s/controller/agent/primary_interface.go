package agent

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// PrimaryInterface returns the interface of the node's default route with the
// lowest metric, IPv4 first, read from procNet (/proc/net in the agent's
// network namespace, which is the host's: the DaemonSet uses hostNetwork).
// ErrNoDefaultRoute when there is none.
func PrimaryInterface(procNet string) (string, error) {
	for _, table := range []struct {
		file  string
		parse func(io.Reader) (string, error)
	}{{"route", defaultRouteV4}, {"ipv6_route", defaultRouteV6}} {
		f, err := os.Open(filepath.Join(procNet, table.file))
		if os.IsNotExist(err) {
			continue // no IPv6, for one
		}
		if err != nil {
			return "", fmt.Errorf("routing table: %w", err)
		}
		iface, err := table.parse(f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("routing table %s: %w", f.Name(), err)
		}
		if iface != "" {
			return iface, nil
		}
	}
	return "", ErrNoDefaultRoute
}

// defaultRouteV4 reads /proc/net/route: Iface Destination Gateway Flags
// RefCnt Use Metric Mask ..., in hex; a default route has destination and
// mask 0 and the RTF_UP flag.
func defaultRouteV4(r io.Reader) (string, error) {
	best, bestMetric := "", uint64(math.MaxUint64)
	s := bufio.NewScanner(r)
	s.Scan() // header
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 8 {
			continue
		}
		flags, err := strconv.ParseUint(f[3], 16, 32)
		if err != nil {
			return "", fmt.Errorf("flags %q: %w", f[3], err)
		}
		metric, err := strconv.ParseUint(f[6], 10, 32)
		if err != nil {
			return "", fmt.Errorf("metric %q: %w", f[6], err)
		}
		const rtfUp = 0x1
		if f[1] == "00000000" && f[7] == "00000000" && flags&rtfUp != 0 && metric < bestMetric {
			best, bestMetric = f[0], metric
		}
	}
	return best, s.Err()
}

// defaultRouteV6 reads /proc/net/ipv6_route: destination, prefix length,
// source, source prefix length, next hop, metric, refcount, use, flags,
// interface; a default route is ::/0 with RTF_UP, and not the kernel's
// unreachable route on lo.
func defaultRouteV6(r io.Reader) (string, error) {
	best, bestMetric := "", uint64(math.MaxUint64)
	s := bufio.NewScanner(r)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 10 {
			continue
		}
		metric, err := strconv.ParseUint(f[5], 16, 32)
		if err != nil {
			return "", fmt.Errorf("metric %q: %w", f[5], err)
		}
		flags, err := strconv.ParseUint(f[8], 16, 32)
		if err != nil {
			return "", fmt.Errorf("flags %q: %w", f[8], err)
		}
		const rtfUp, rtfReject = 0x1, 0x200
		if f[0] == strings.Repeat("0", 32) && f[1] == "00" && flags&rtfUp != 0 && flags&rtfReject == 0 && f[9] != "lo" && metric < bestMetric {
			best, bestMetric = f[9], metric
		}
	}
	return best, s.Err()
}
