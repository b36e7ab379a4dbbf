package dispatcher_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netns"

	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// TestLibxdpPins: a freplace XDP chain is pinned in libxdp's layout as well,
// for xdp-loader status, and those pins follow the chain; a lone program,
// which runs with no dispatcher, has none.
func TestLibxdpPins(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode dispatcher.Mode) {
		ct := newXDPChainTest(t)
		fs := newBPFFS(t)
		libxdp := filepath.Join(fs, "xdp")
		d := ct.open(t, dispatcher.Options{Mode: mode, PinDir: filepath.Join(fs, "bpfd", "hook"), LibxdpDir: libxdp})

		apply(t, d, mode, ct.first, ct.last)
		var want []string
		if mode == dispatcher.ModeFreplace {
			dir := fmt.Sprintf("dispatch-%d-%d", ct.net.rx, d.State().ProgramID)
			want = []string{dir, dir + "/prog0-link", dir + "/prog0-prog", dir + "/prog1-link", dir + "/prog1-prog"}
		}
		if diff := cmp.Diff(want, pins(t, libxdp)); diff != "" {
			t.Fatalf("libxdp pins (-want +got):\n%s", diff)
		}

		apply(t, d, mode, ct.first, ct.stop, ct.last)
		want = nil
		if mode == dispatcher.ModeFreplace {
			dir := fmt.Sprintf("dispatch-%d-%d", ct.net.rx, d.State().ProgramID)
			want = []string{dir, dir + "/prog0-link", dir + "/prog0-prog", dir + "/prog1-link", dir + "/prog1-prog", dir + "/prog2-link", dir + "/prog2-prog"}
		}
		if diff := cmp.Diff(want, pins(t, libxdp)); diff != "" {
			t.Fatalf("libxdp pins after a rebuild (-want +got):\n%s", diff)
		}

		apply(t, d, mode, ct.last)
		if p := pins(t, libxdp); len(p) != 0 {
			t.Fatalf("libxdp pins of a lone program: %v", p)
		}

		if err := d.Apply(nil); err != nil {
			t.Fatal(err)
		}
		if p := pins(t, libxdp); len(p) != 0 {
			t.Fatalf("libxdp pins after the last program left: %v", p)
		}
	})
}

// TestXDPLoaderStatus runs Debian's xdp-loader status (BPFD_XDP_LOADER, or
// xdp-loader on the PATH) on an interface with a chain: it shows a freplace
// chain program by program, with priorities and proceed-on actions, and a
// linked chain as the one program it is.
func TestXDPLoaderStatus(t *testing.T) {
	xdpLoader := os.Getenv("BPFD_XDP_LOADER")
	if xdpLoader == "" {
		var err error
		if xdpLoader, err = exec.LookPath("xdp-loader"); err != nil {
			t.Skip("no xdp-loader: apt-get install xdp-tools, or set BPFD_XDP_LOADER")
		}
	}
	forEachMode(t, func(t *testing.T, mode dispatcher.Mode) {
		ct := newXDPChainTest(t)
		fs := newBPFFS(t)
		d := ct.open(t, dispatcher.Options{Mode: mode, PinDir: filepath.Join(fs, "bpfd", "hook"), LibxdpDir: filepath.Join(fs, "xdp")})
		apply(t, d, mode, ct.first, ct.proceedOn(t, ct.stop, ct.stopProceeds...), ct.last)

		var out []byte
		err := inThread(func() error {
			ns, err := netns.GetFromPath(ct.net.netns)
			if err != nil {
				return err
			}
			defer ns.Close()
			if err := netns.Set(ns); err != nil {
				return err
			}
			cmd := exec.Command(xdpLoader, "status", "rx")
			// libxdp looks for its pins under LIBXDP_BPFFS/xdp.
			cmd.Env = append(os.Environ(), "LIBXDP_BPFFS="+fs)
			out, err = cmd.CombinedOutput()
			return err
		})
		t.Logf("xdp-loader status rx:\n%s", out)
		if err != nil {
			t.Fatalf("xdp-loader status: %v", err)
		}
		want := []string{"xdp_linked"}
		if mode == dispatcher.ModeFreplace {
			want = []string{"xdp_dispatcher", "xdp_ingress_counter", "xdp_verdict", "xdp_counter", "XDP_DROP", "100", "200", "300"}
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Errorf("xdp-loader status does not show %q", w)
			}
		}
	})
}
