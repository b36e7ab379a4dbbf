package dispatcher_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf/link"
	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netns"

	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// TestOpenAfterInterruptedRebuild kills a rebuild, in effect, at each step
// that leaves pins behind: after restarting, the hook runs one whole chain,
// the one Open reports, and only its pins are left.
func TestOpenAfterInterruptedRebuild(t *testing.T) {
	cases := map[string]struct {
		step string
		// rebuilt reports whether the hook runs the new chain afterwards.
		rebuilt bool
	}{
		"new chain pinned, not yet attached":      {step: "pinned"},
		"new chain attached, old not yet removed": {step: "swapped", rebuilt: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			forEachHook(t, func(t *testing.T, ct *chainTest, opts dispatcher.Options) {
				opts.PinDir = filepath.Join(newBPFFS(t), "hook")
				d, err := dispatcher.Open(ct.hook, opts)
				if err != nil {
					t.Fatal(err)
				}
				apply(t, d, opts.Mode, ct.first)
				old := d.State()
				if err := d.InterruptRebuild([]dispatcher.Member{ct.first, ct.last}, tc.step); err != nil {
					t.Fatal(err)
				}

				d = ct.open(t, opts)
				got := d.State()
				wantIDs := []uint64{1}
				if tc.rebuilt {
					wantIDs = []uint64{1, 3}
				}
				if diff := cmp.Diff(wantIDs, ids(got.Slots)); diff != "" {
					t.Fatalf("members after restart (-want +got):\n%s", diff)
				}
				if (got.ProgramID != old.ProgramID) != tc.rebuilt {
					t.Fatalf("dispatcher program %d after restart, %d before", got.ProgramID, old.ProgramID)
				}
				if p := pins(t, opts.PinDir); !cmp.Equal(chainDirs(p), []string{filepath.Base(generation(got))}) {
					t.Fatalf("pins after restart: %v, want only those of the running chain", p)
				}
				want := [3]uint64{10, 0, 0}
				if tc.rebuilt {
					want[2] = 10
				}
				ct.sendAndExpect(t, 10, want)
			})
		})
	}
}

// generation returns the name of the pin directory of the chain s runs.
func generation(s dispatcher.State) string { return fmt.Sprintf("%s-%d", s.Mode, s.ProgramID) }

// chainDirs returns the chain directories among pins.
func chainDirs(pins []string) []string {
	var dirs []string
	for _, p := range pins {
		if filepath.Dir(p) == "." && p != "link" {
			dirs = append(dirs, p)
		}
	}
	return dirs
}

// TestForeignXDPProgramConflicts: an interface that runs an XDP program
// bpfd did not attach keeps it, and the chain is refused.
func TestForeignXDPProgramConflicts(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode dispatcher.Mode) {
		ct := newXDPChainTest(t)
		coll := newCollection(t, "xdp_counter")
		var l link.Link
		err := inThread(func() error {
			ns, err := netns.GetFromPath(ct.net.netns)
			if err != nil {
				return err
			}
			defer ns.Close()
			if err := netns.Set(ns); err != nil {
				return err
			}
			l, err = link.AttachXDP(link.XDPOptions{Program: coll.Programs["xdp_counter"], Interface: ct.net.rx})
			return err
		})
		if err != nil {
			t.Fatalf("attach xdp_counter: %v", err)
		}
		defer l.Close()

		d := ct.open(t, dispatcher.Options{Mode: mode})
		err = d.Apply([]dispatcher.Member{ct.first})
		if !errors.Is(err, dispatcher.ErrConflict) {
			t.Fatalf("Apply on an interface with a foreign XDP program: %v, want ErrConflict", err)
		}
		t.Logf("Apply: %v", err)
		ct.net.send(t, 5)
		eventually(t, "xdp_counter counted the frames", func() bool {
			return counter(t, coll.Maps["xdp_stats"], experimentalProto) == 5
		})
		if got := ct.seen(t); got[0] != 0 {
			t.Fatalf("the chain's first program counted %d frames", got[0])
		}
	})
}
