package dispatcher

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/cilium/ebpf"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// Options configure a Dispatcher.
type Options struct {
	// Mode is ModeFreplace or ModeLinked, as ResolveMode chose at
	// start-up. Required.
	Mode Mode
	// PinDir is a directory on a bpffs that the dispatcher owns. It pins
	// the hook's link and each chain there (see pins.go), so the chain
	// outlives the process and Open adopts it. Empty pins nothing: the chain
	// lives as long as the Dispatcher, and Close takes it off the hook.
	PinDir string
	// TCAttach is how a TC dispatcher attaches; TCAttachAuto by default.
	TCAttach TCAttach
	// TCFilterPriority is the preference of a TC dispatcher's cls_bpf
	// filter; 0 is DefaultTCFilterPriority.
	TCFilterPriority uint16
	// ChainLone runs a lone program in a chain of the Dispatcher's mode
	// too, as bpfd did before lone programs ran directly. By default a
	// chain of one program is the program itself, attached with no
	// dispatcher in front of it (ModeDirect).
	ChainLone bool
	// LibxdpDir, if set, is where a freplace XDP dispatcher also pins its
	// chain in libxdp's layout, dispatch-<ifindex>-<dispatcher id>/
	// prog<i>-{prog,link}, so that xdp-loader status shows it. libxdp's
	// directory is /sys/fs/bpf/xdp. Needs PinDir.
	LibxdpDir string
	// Logger receives what the dispatcher cleans up and what it could not;
	// none when nil.
	Logger *slog.Logger
}

// Dispatcher runs a chain of programs on one hook and swaps it for a new
// chain, atomically, whenever its members change. Its methods are safe for
// concurrent use; they run one at a time.
type Dispatcher struct {
	hook Hook
	opts Options
	log  *slog.Logger

	mu  sync.Mutex
	att attachment
	cur *generation
	// exts are the members' extension programs, by member ID (freplace):
	// loaded once, attached to each new chain.
	exts map[uint64]*ebpf.Program
	// accounting says whether the chains Apply builds account their
	// members' runs; base holds, by member ID, what chains no longer on
	// the hook accounted.
	accounting bool
	base       map[uint64]MemberStats
}

// Open returns the dispatcher of hook. With a PinDir it adopts the chain
// pinned there that the hook still runs, as it runs, and removes pins left
// by an interrupted rebuild or by a hook that is gone; without one, or when
// nothing is pinned, the dispatcher starts with no chain. Open attaches
// nothing.
func Open(hook Hook, opts Options) (*Dispatcher, error) {
	if err := hook.check(); err != nil {
		return nil, err
	}
	if err := opts.Mode.check(); err != nil {
		return nil, err
	}
	if opts.TCFilterPriority == 0 {
		opts.TCFilterPriority = DefaultTCFilterPriority
	}
	if opts.LibxdpDir != "" && opts.PinDir == "" {
		return nil, fmt.Errorf("libxdp directory %s: needs a pin directory: %w", opts.LibxdpDir, ErrInvalid)
	}
	d := &Dispatcher{hook: hook, opts: opts, log: opts.Logger, exts: map[uint64]*ebpf.Program{}, base: map[uint64]MemberStats{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.log = d.log.With("hook", hook.String())
	if opts.PinDir == "" {
		return d, nil
	}
	if err := checkBPFFS(opts.PinDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.PinDir, 0o700); err != nil {
		return nil, fmt.Errorf("pin directory: %w", err)
	}
	if err := d.adopt(); err != nil {
		d.closeAll()
		return nil, fmt.Errorf("%s: adopt pinned chain: %w", hook, err)
	}
	return d, nil
}

// adopt takes over what PinDir holds; see Open.
func (d *Dispatcher) adopt() error {
	dir := d.opts.PinDir
	var running ebpf.ProgramID
	if _, err := os.Stat(filepath.Join(dir, pinLink)); err == nil {
		a, err := loadLinkAttachment(filepath.Join(dir, pinLink))
		if err != nil {
			return err
		}
		d.att = a
	} else if d.hook.Kind == progtype.TC {
		f := newFilter(d.hook, d.opts.TCFilterPriority)
		if id, err := f.running(); err != nil {
			return err
		} else if id != 0 {
			d.att = f
		}
	}
	if d.att != nil {
		var err error
		if running, err = d.att.running(); err != nil {
			return err
		}
		if running == 0 {
			d.log.Warn("the hook is gone: removing its pins", "attachment", d.att.String())
			err := d.att.detach()
			d.att = nil
			if err != nil {
				return err
			}
		}
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("pin directory: %w", err)
	}
	for _, e := range entries {
		mode, id, ok := parseGenerationName(e.Name())
		if !ok {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if d.att == nil || id != running {
			d.log.Info("removing a chain the hook does not run", "pins", path)
			d.unmirror(id)
			if err := os.RemoveAll(path); err != nil {
				return fmt.Errorf("remove stale chain: %w", err)
			}
			continue
		}
		slots, err := readManifest(filepath.Join(path, pinChain))
		if err != nil {
			return err
		}
		d.cur = &generation{mode: mode, programID: id, slots: slots, dir: path}
		if _, err := os.Stat(filepath.Join(path, pinCounters)); err == nil {
			if d.cur.counters, err = ebpf.LoadPinnedMap(filepath.Join(path, pinCounters), nil); err != nil {
				return fmt.Errorf("chain counters: %w", err)
			}
		}
		if err := d.loadBase(path, slots); err != nil {
			return err
		}
		if mode == ModeFreplace {
			for i, s := range slots {
				p, err := ebpf.LoadPinnedProgram(filepath.Join(path, slotProgramPin(i)), nil)
				if err != nil {
					return fmt.Errorf("slot %d: %w", i, err)
				}
				d.exts[s.ID] = p
			}
			d.mirror(d.cur)
		}
	}
	if d.att != nil && d.cur == nil {
		// Pins of the chain were lost; the next Apply replaces it.
		d.log.Warn("the hook runs a chain with no pins", "program_id", running)
		d.cur = &generation{programID: running}
	}
	return nil
}

// Apply makes the hook run members, in the order given, each proceeding on
// its own set: it builds a new chain beside the running one and swaps it in
// atomically, so that every packet runs through the old chain or the new
// one, never through no chain or part of one. One member runs on its own,
// with no dispatcher (ModeDirect; see Options.ChainLone), and changes shape
// with the same swap when a second one comes or goes. No members takes the
// chain off the hook and removes its pins.
//
// When Apply fails the hook runs the chain it ran before. A program the
// verifier rejects, or that cannot be attached, fails Apply with a
// *MemberError naming it; more programs than the mode takes fail with
// ErrTooMany.
func (d *Dispatcher) Apply(members []Member) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(members) == 0 {
		return d.clear()
	}
	mode := d.opts.Mode
	if !d.opts.ChainLone {
		mode = ChainMode(mode, len(members))
	}
	c, err := build(d.hook.Kind, mode, members, d.exts, BuildOptions{Accounting: d.accounting})
	if err != nil {
		return fmt.Errorf("%s: %w", d.hook, err)
	}
	id, err := programID(c.prog)
	if err != nil {
		c.Close()
		return err
	}
	gen := &generation{mode: c.mode, programID: id, slots: c.slots, chain: c}
	if c.counters != nil {
		if gen.counters, err = c.counters.Clone(); err != nil {
			c.Close()
			return fmt.Errorf("%s: chain counters: %w", d.hook, err)
		}
	}
	if d.opts.PinDir != "" {
		if gen.dir, err = pinGeneration(d.opts.PinDir, c); err != nil {
			c.Close()
			return fmt.Errorf("%s: %w", d.hook, err)
		}
	}
	if err := d.swap(c.prog); err != nil {
		d.discard(gen)
		return fmt.Errorf("%s: %w", d.hook, err)
	}

	old := d.cur
	d.cur = gen
	d.keepExtensions(c)
	d.retire(old)
	d.mirror(gen)
	d.pruneBase()
	d.pinBase(gen)
	return nil
}

// swap makes the hook run prog: it attaches prog when the hook runs no
// chain, else updates the attachment in place.
func (d *Dispatcher) swap(prog *ebpf.Program) error {
	if d.att != nil {
		if err := d.att.update(prog); err != nil {
			return fmt.Errorf("swap chains on %s: %w", d.att, err)
		}
		return nil
	}
	att, err := attach(d.hook, d.opts.TCAttach, d.opts.TCFilterPriority, prog)
	if err != nil {
		return err
	}
	if d.opts.PinDir != "" {
		if err := att.pin(filepath.Join(d.opts.PinDir, pinLink)); err != nil {
			return errors.Join(err, att.detach())
		}
	}
	d.att = att
	return nil
}

// keepExtensions makes the extension programs of c's members the
// dispatcher's, and closes those of programs that left the chain.
func (d *Dispatcher) keepExtensions(c *Chain) {
	for id, p := range c.loaded {
		d.exts[id] = p
	}
	c.loaded = nil
	for id, p := range d.exts {
		if !slices.ContainsFunc(c.slots, func(s Slot) bool { return s.ID == id }) || c.mode != ModeFreplace {
			p.Close()
			delete(d.exts, id)
		}
	}
}

// discard undoes a chain that never ran on the hook.
func (d *Dispatcher) discard(gen *generation) {
	if gen.counters != nil {
		gen.counters.Close()
	}
	if gen.dir != "" {
		if err := os.RemoveAll(gen.dir); err != nil {
			d.log.Error("remove the pins of a chain that failed to attach", "pins", gen.dir, "error", err)
		}
	}
	gen.chain.Close()
}

// retire releases a chain the hook no longer runs. Failures leave pins the
// next Open removes; they are logged.
func (d *Dispatcher) retire(gen *generation) {
	if gen == nil {
		return
	}
	if gen.mode == ModeFreplace || gen.counters != nil || gen.mode == ModeDirect && d.accounting {
		// Detaching an extension patches its slot of the old dispatcher
		// back to the stub, and its counters (a lone program's kernel
		// statistics, while they are on) are final: packets still
		// running the old chain must finish first.
		synchronizeRCU()
	}
	d.fold(gen)
	if gen.chain != nil {
		if err := gen.chain.Close(); err != nil {
			d.log.Error("close a retired chain", "program_id", gen.programID, "error", err)
		}
	}
	// The libxdp pins go first: while the chain's own pins are there, Open
	// after a crash finds the chain and removes both.
	d.unmirror(gen.programID)
	if gen.dir != "" {
		if err := os.RemoveAll(gen.dir); err != nil {
			d.log.Error("remove the pins of a retired chain; the next start removes them", "pins", gen.dir, "error", err)
		}
	}
}

// clear takes the chain off the hook and removes every pin.
func (d *Dispatcher) clear() error {
	if d.att != nil {
		if err := d.att.detach(); err != nil {
			return fmt.Errorf("%s: detach: %w", d.hook, err)
		}
		d.att = nil
	}
	d.retire(d.cur)
	d.cur = nil
	d.pruneBase()
	for id, p := range d.exts {
		p.Close()
		delete(d.exts, id)
	}
	if d.opts.PinDir != "" {
		if err := os.RemoveAll(d.opts.PinDir); err != nil {
			return fmt.Errorf("%s: remove pins: %w", d.hook, err)
		}
	}
	return nil
}

// State is what a dispatcher runs on its hook.
type State struct {
	// Mode is the running chain's mode; empty when the hook runs no chain.
	Mode Mode
	// ProgramID is the kernel id of the dispatcher program the hook runs.
	ProgramID ebpf.ProgramID
	// Attachment says how: "xdp link 7", "tcx link 9", "tc filter
	// preference 50 handle 0xb9fd".
	Attachment string
	// Slots are the chain's members in run order.
	Slots []Slot
	// Accounting says whether the chain accounts its members' runs
	// (Dispatcher.Stats).
	Accounting bool
}

// State returns what the dispatcher runs.
func (d *Dispatcher) State() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	var s State
	if d.att != nil {
		s.Attachment = d.att.String()
	}
	if d.cur != nil {
		s.Mode, s.ProgramID, s.Slots = d.cur.mode, d.cur.programID, slices.Clone(d.cur.slots)
		s.Accounting = d.cur.counters != nil
	}
	return s
}

// Hook returns the dispatcher's hook.
func (d *Dispatcher) Hook() Hook { return d.hook }

// Close releases the dispatcher's descriptors. With a PinDir the chain stays
// on the hook, held by its pins, for the next Open; without one Close takes
// it off the hook.
func (d *Dispatcher) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.opts.PinDir == "" {
		return d.clear()
	}
	return d.closeAll()
}

func (d *Dispatcher) closeAll() error {
	var errs []error
	if d.att != nil {
		errs = append(errs, d.att.close())
		d.att = nil
	}
	if d.cur != nil && d.cur.chain != nil {
		errs = append(errs, d.cur.chain.Close())
	}
	if d.cur != nil && d.cur.counters != nil {
		errs = append(errs, d.cur.counters.Close())
	}
	d.cur = nil
	for id, p := range d.exts {
		errs = append(errs, p.Close())
		delete(d.exts, id)
	}
	return errors.Join(errs...)
}
