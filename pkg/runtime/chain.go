package runtime

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// The programs of an XDP hook, or of one direction of a TC hook, run in a
// chain that the hook's dispatcher (package dispatcher) builds: one after
// the other by rank (priority, then attach time, then id), each proceeding
// on its own set of return values. The Manager keeps the chain's members in
// the hook's state, and rebuilds the chain from them, swapping it in
// atomically, on every load and unload that touches the hook.

// DispatcherMode is how the Manager chains the programs of an XDP or TC
// hook; docs/multi-program.md compares the modes.
type DispatcherMode = dispatcher.Mode

// The dispatcher modes Options.DispatcherMode takes.
const (
	// DispatcherAuto picks DispatcherFreplace where the kernel runs
	// extension programs, else DispatcherLinked.
	DispatcherAuto = dispatcher.ModeAuto
	// DispatcherFreplace runs the programs as extension programs replacing
	// the stubs of a dispatcher program: at most 10 per hook.
	DispatcherFreplace = dispatcher.ModeFreplace
	// DispatcherLinked links the programs into one generated program: at
	// most 64 per hook.
	DispatcherLinked = dispatcher.ModeLinked
)

// DefaultLibxdpDir is libxdp's directory on the system's bpffs, where the
// Manager also pins freplace XDP chains so that xdp-loader status shows them.
const DefaultLibxdpDir = "/sys/fs/bpf/xdp"

// dispatchersDir is the directory under the bpffs where the dispatchers pin
// their chains, one directory per hook.
const dispatchersDir = "dispatchers"

// chainTarget is an XDP or TC hook: its programs run in the chain of the
// hook's dispatcher.
type chainTarget interface {
	target
	// chainHook is the hook as the dispatcher names it.
	chainHook() dispatcher.Hook
	// String names the hook for errors: "interface eth0 ingress".
	String() string
}

// dispatcherDir is where the dispatcher of the hook named key pins.
func (m *Manager) dispatcherDir(key string) string {
	return filepath.Join(m.bpffs, dispatchersDir, strings.ReplaceAll(key, "/", "_"))
}

// chainHookOf returns the hook of a program recorded in a chain.
func chainHookOf(r *record) dispatcher.Hook {
	h := dispatcher.Hook{Kind: r.Kind, Ifindex: r.Chain.Ifindex}
	switch a := r.Attach.(type) {
	case XDPAttach:
		h.Netns = a.Netns
		h.XDPFlags, _ = a.Mode.flags()
	case TCAttach:
		h.Netns, h.Direction = a.Netns, dispatcher.Direction(a.Direction)
	}
	return h
}

// proceedOnNames returns the proceed-on names of an XDP or TC attach spec.
func proceedOnNames(spec AttachSpec) []string {
	switch a := spec.(type) {
	case XDPAttach:
		return a.ProceedOn
	case TCAttach:
		return a.ProceedOn
	}
	return nil
}

// dispatcher returns the dispatcher of the hook named key, opening it
// (which adopts the chain it pinned) when the hook has none yet. The caller
// holds the hook.
func (m *Manager) dispatcher(key string, hs *hookState, h dispatcher.Hook) (*dispatcher.Dispatcher, error) {
	if hs.disp != nil {
		return hs.disp, nil
	}
	d, err := dispatcher.Open(h, dispatcher.Options{
		Mode:      m.mode,
		PinDir:    m.dispatcherDir(key),
		ChainLone: m.chainLone,
		LibxdpDir: m.libxdpDir,
		Logger:    m.log,
	})
	if err != nil {
		return nil, chainError(err, key)
	}
	d.SetAccounting(m.stats.on.Load())
	hs.disp = d
	hs.setChain(hs.snapshot(), d.State())
	return d, nil
}

// applyChain makes the hook named key run ms, which are in run order, and
// makes them the hook's programs. fresh holds the maps of the programs a
// load in progress adds, by id; the others' maps are opened from their
// pins. No programs takes the chain off the hook and closes its dispatcher.
// When applyChain fails, the hook runs what it ran before. The caller holds
// the hook.
func (m *Manager) applyChain(key string, hs *hookState, h dispatcher.Hook, ms []*member, fresh map[ID]map[string]*ebpf.Map) error {
	d, err := m.dispatcher(key, hs, h)
	if err != nil {
		return err
	}
	if len(ms) == 0 {
		if err := d.Apply(nil); err != nil {
			return chainError(err, key)
		}
		if err := d.Close(); err != nil {
			m.log.Warn("close dispatcher", "hook", key, "error", err)
		}
		hs.disp = nil
		hs.setChain(nil, dispatcher.State{})
		return nil
	}
	members, closeMaps, err := m.chainMembers(ms, fresh)
	if err != nil {
		return err
	}
	defer closeMaps()
	if err := d.Apply(members); err != nil {
		return chainError(err, key)
	}
	hs.setChain(ms, d.State())
	return nil
}

// closeDispatcher closes the dispatcher of a hook left without programs,
// removing its pins. The caller holds the hook.
func (m *Manager) closeDispatcher(key string, hs *hookState) {
	if hs.disp == nil || len(hs.snapshot()) > 0 {
		return
	}
	if err := m.applyChain(key, hs, hs.disp.Hook(), nil, nil); err != nil {
		m.log.Warn("remove the pins of a dispatcher without programs", "hook", key, "error", err)
	}
}

// chainMembers returns ms as the dispatcher's members, with their programs
// and maps. It returns a function that closes the maps it opened.
func (m *Manager) chainMembers(ms []*member, fresh map[ID]map[string]*ebpf.Map) (_ []dispatcher.Member, closeMaps func(), err error) {
	var opened []*ebpf.Map
	closeOpened := func() {
		for _, mp := range opened {
			mp.Close()
		}
	}
	closeMaps = closeOpened
	defer func() {
		// Not closeMaps: a failing return has set it to nil.
		if err != nil {
			closeOpened()
		}
	}()
	out := make([]dispatcher.Member, len(ms))
	objects := map[string]*ebpf.CollectionSpec{}
	for i, mb := range ms {
		r := mb.rec
		po, err := proceedOn(r.Kind, proceedOnNames(r.Attach))
		if err != nil {
			return nil, nil, fmt.Errorf("program %s (id %d): %w", r.Name, r.ID, err)
		}
		if mb.program == nil {
			if mb.program, err = m.storedProgram(r, objects); err != nil {
				return nil, nil, err
			}
		}
		maps := fresh[r.ID]
		if maps == nil {
			maps = make(map[string]*ebpf.Map, len(r.Maps))
			for _, mr := range r.Maps {
				mp, err := ebpf.LoadPinnedMap(m.mapPin(r.ID, mr.Name), nil)
				if err != nil {
					return nil, nil, fmt.Errorf("program %s (id %d): map %s: %w", r.Name, r.ID, mr.Name, kernelError(err))
				}
				opened = append(opened, mp)
				maps[mr.Name] = mp
			}
		}
		out[i] = dispatcher.Member{
			ID:        uint64(r.ID),
			Name:      r.Name,
			Priority:  hookPriority(r.Attach),
			ProceedOn: po,
			Program:   mb.program,
			Maps:      maps,
		}
	}
	return out, closeMaps, nil
}

// storedProgram returns the spec of a program in a chain from the object the
// store keeps for it; objects caches parsed objects by digest.
func (m *Manager) storedProgram(r *record, objects map[string]*ebpf.CollectionSpec) (*ebpf.ProgramSpec, error) {
	sum := r.Chain.Object
	spec := objects[sum]
	if spec == nil {
		elf, err := m.store.object(sum)
		if err != nil {
			return nil, fmt.Errorf("program %s (id %d): %w", r.Name, r.ID, err)
		}
		if got := sha256.Sum256(elf); hex.EncodeToString(got[:]) != sum {
			err := fmt.Errorf("program %s (id %d): stored object %s (sha256:%s): %w; it is not loaded", r.Name, r.ID, r.Object, sum, ErrIntegrity)
			m.markFault(r.ID, err.Error())
			return nil, err
		}
		if spec, err = ebpf.LoadCollectionSpecFromReader(bytes.NewReader(elf)); err != nil {
			return nil, fmt.Errorf("program %s (id %d): stored object %s: %w", r.Name, r.ID, r.Object, err)
		}
		objects[sum] = spec
	}
	p := spec.Programs[r.Name]
	if p == nil {
		return nil, fmt.Errorf("program %s (id %d): not in its stored object %s", r.Name, r.ID, r.Object)
	}
	return p, nil
}

// syncMembers makes the records and pins of the hook's programs match the
// chain it runs: the chain's mode and, in freplace mode, each program's
// extension program (its own kernel program) pinned at <id>/program and
// recorded as its ProgramID, in direct mode the lone program itself; in
// linked mode a program has no kernel program of its own. It returns the
// records it changed. The caller holds the hook.
func (m *Manager) syncMembers(hs *hookState) ([]*record, error) {
	st := hs.chainState()
	ms := hs.snapshot()
	var changed []*record
	for i, mb := range ms {
		r := mb.rec
		if i >= len(st.Slots) || st.Slots[i].ID != uint64(r.ID) {
			return changed, fmt.Errorf("program %d: not at position %d of the chain the hook runs", r.ID, i)
		}
		var progID uint32
		if st.Mode == dispatcher.ModeFreplace || st.Mode == dispatcher.ModeDirect {
			progID = uint32(st.Slots[i].ProgramID)
		}
		if err := m.pinMemberProgram(r.ID, progID); err != nil {
			return changed, fmt.Errorf("program %s (id %d): %w", r.Name, r.ID, err)
		}
		if r.Chain.Mode != st.Mode || r.ProgramID != progID {
			r.Chain.Mode, r.ProgramID = st.Mode, progID
			changed = append(changed, r)
		}
	}
	return changed, nil
}

// recordMembers makes the records and pins of the hook's programs match the
// chain it runs after a rebuild that changed how they run (the lone program
// left on the hook runs on its own). What it cannot do is logged: the next
// Open does it. The caller holds the hook.
func (m *Manager) recordMembers(key string, hs *hookState) {
	changed, err := m.syncMembers(hs)
	if err != nil {
		m.log.Error("cannot pin the chain's programs; the next start does", "hook", key, "error", err)
	}
	if len(changed) == 0 {
		return
	}
	if err := m.store.put(changed...); err != nil {
		m.log.Error("cannot record how the hook's programs run; the next start does", "hook", key, "error", err)
	}
}

// pinMemberProgram pins the kernel program progID at the program pin of id,
// replacing another; 0 removes the pin.
func (m *Manager) pinMemberProgram(id ID, progID uint32) error {
	pin := m.programPin(id)
	if cur, err := ebpf.LoadPinnedProgram(pin, &ebpf.LoadPinOptions{ReadOnly: true}); err == nil {
		info, ierr := cur.Info()
		cur.Close()
		if ierr == nil {
			if kid, ok := info.ID(); ok && uint32(kid) == progID {
				return nil
			}
		}
	}
	if err := os.Remove(pin); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove program pin: %w", err)
	}
	if progID == 0 {
		return nil
	}
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(progID))
	if err != nil {
		return fmt.Errorf("extension program %d: %w", progID, err)
	}
	defer p.Close()
	if err := p.Pin(pin); err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	return nil
}

// chainError gives an error of the dispatcher of the hook named key this
// package's sentinels: a program the verifier rejected is a *VerifierError
// naming it.
func chainError(err error, key string) error {
	var (
		me *dispatcher.MemberError
		ve *ebpf.VerifierError
	)
	switch {
	case errors.As(err, &me) && errors.As(me.Err, &ve):
		return newVerifierError(me.Name, ve)
	case errors.As(err, &ve):
		return newVerifierError("chain of hook "+key, ve)
	case errors.Is(err, dispatcher.ErrTooMany), errors.Is(err, dispatcher.ErrConflict):
		return classify(err, ErrConflict)
	case errors.Is(err, dispatcher.ErrInvalid):
		return classify(err, ErrInvalid)
	case errors.Is(err, dispatcher.ErrUnsupported):
		return classify(err, ErrUnsupported)
	}
	return kernelError(err)
}
