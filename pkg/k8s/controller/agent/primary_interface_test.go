package agent

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestPrimaryInterface(t *testing.T) {
	const header = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	cases := map[string]struct {
		route, ipv6Route string
		want             string
		wantErr          error
	}{
		"default route": {
			route: header +
				"eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
				"eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
			want: "eth0",
		},
		"lowest metric wins": {
			route: header +
				"wlan0\t00000000\t010200C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n" +
				"enp3s0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n",
			want: "enp3s0",
		},
		"route that is down": {
			route: header + "eth1\t00000000\t010200C0\t0002\t0\t0\t0\t00000000\t0\t0\t0\n",
			ipv6Route: "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n" +
				"00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     ens5\n",
			want: "ens5",
		},
		"IPv6 only": {
			route:     header,
			ipv6Route: "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0\n",
			want:      "eth0",
		},
		"none": {
			route:     header + "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
			ipv6Route: "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n",
			wantErr:   ErrNoDefaultRoute,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "route"), []byte(tc.route), 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.ipv6Route != "" {
				if err := os.WriteFile(filepath.Join(dir, "ipv6_route"), []byte(tc.ipv6Route), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := PrimaryInterface(dir)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("PrimaryInterface = %q, want %q", got, tc.want)
			}
		})
	}
}
