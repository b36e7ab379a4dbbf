package dispatcher_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/go-cmp/cmp"

	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// TestLoneProgramRunsDirectly: a lone program runs on the hook as itself,
// with no dispatcher; a second program puts both in a chain and the first
// leaving takes the chain away again, each by one swap. A restarted
// dispatcher adopts either shape as it runs, and a chain of one that a
// dispatcher with ChainLone (as bpfd before) left is adopted as it runs
// and rebuilt to run directly by the next Apply.
func TestLoneProgramRunsDirectly(t *testing.T) {
	forEachHook(t, func(t *testing.T, ct *chainTest, opts dispatcher.Options) {
		opts.PinDir = filepath.Join(newBPFFS(t), "hook")
		reopen := func(d *dispatcher.Dispatcher, opts dispatcher.Options) *dispatcher.Dispatcher {
			t.Helper()
			before := d.State()
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			d, err := dispatcher.Open(ct.hook, opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(before, d.State()); diff != "" {
				t.Fatalf("State() of the adopted chain (-before +after):\n%s", diff)
			}
			return d
		}

		d, err := dispatcher.Open(ct.hook, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { d.Close() }()
		apply(t, d, opts.Mode, ct.first)
		ct.sendAndExpect(t, 10, [3]uint64{10, 0, 0})
		d = reopen(d, opts)
		ct.sendAndExpect(t, 10, [3]uint64{20, 0, 0})

		apply(t, d, opts.Mode, ct.first, ct.last)
		ct.sendAndExpect(t, 10, [3]uint64{30, 0, 10})
		apply(t, d, opts.Mode, ct.last)
		ct.sendAndExpect(t, 10, [3]uint64{30, 0, 20})

		// As bpfd before lone programs ran directly: a chain of one.
		lone := opts
		lone.ChainLone = true
		d = reopen(d, lone)
		if err := d.Apply([]dispatcher.Member{ct.last}); err != nil {
			t.Fatal(err)
		}
		if st := d.State(); st.Mode != opts.Mode || runningName(t, st) == ct.last.Name {
			t.Fatalf("State() with ChainLone = %+v, want a %s chain of one", st, opts.Mode)
		}
		ct.sendAndExpect(t, 10, [3]uint64{30, 0, 30})
		d = reopen(d, opts)
		apply(t, d, opts.Mode, ct.last)
		ct.sendAndExpect(t, 10, [3]uint64{30, 0, 40})

		if err := d.Apply(nil); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(opts.PinDir); !os.IsNotExist(err) {
			t.Fatalf("pin directory after the last program left: %v (%v)", pins(t, opts.PinDir), err)
		}
	})
}

// runningName returns the name of the program the hook runs.
func runningName(t testing.TB, st dispatcher.State) string {
	t.Helper()
	p, err := ebpf.NewProgramFromID(st.ProgramID)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		t.Fatal(err)
	}
	return info.Name
}
