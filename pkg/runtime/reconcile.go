package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// reconcile makes the store, the bpffs and the kernel agree at Open; see
// Open for what it does. Each change is logged. A record that cannot be
// reconciled (a netlink error, say) is logged and kept as it is, for the next
// Open to retry: one bad record does not keep bpfd from starting.
func (m *Manager) reconcile(ctx context.Context) error {
	rs, err := m.store.all()
	if err != nil {
		return err
	}
	kept := map[string]bool{}
	chains := map[string][]*record{}
	for _, r := range rs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if r.Chain != nil {
			chains[r.Hook] = append(chains[r.Hook], r)
			continue
		}
		log := m.recordLog(r)
		adopted, err := m.reconcileRecord(r, log)
		if err != nil {
			log().Error("cannot reconcile program; its record stays", "state", r.State, "error", err)
		}
		if adopted || err != nil {
			kept[r.ID.String()] = true
		}
	}
	dispatchers := map[string]bool{}
	for _, key := range slices.Sorted(maps.Keys(chains)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		ids := m.reconcileChain(key, chains[key])
		for _, id := range ids {
			kept[id.String()] = true
		}
		if len(ids) > 0 {
			dispatchers[filepath.Base(m.dispatcherDir(key))] = true
		}
	}

	entries, err := os.ReadDir(m.bpffs)
	if err != nil {
		return fmt.Errorf("bpffs %s: %w", m.bpffs, err)
	}
	for _, e := range entries {
		id, err := ParseID(e.Name())
		if err != nil || id.String() != e.Name() || kept[e.Name()] {
			continue // not a program directory, or a live one
		}
		if err := removePins(m.programDir(id)); err != nil {
			m.log.Error("cannot remove pins without a record", "path", m.programDir(id), "error", err)
			continue
		}
		m.log.Warn("removed pins without a record", "path", m.programDir(id))
	}
	m.removeStaleDispatchers(dispatchers)
	return nil
}

// removeStaleDispatchers removes the pins of dispatchers whose hook has no
// recorded programs: left when removing them failed. Unpinned, their links
// detach.
func (m *Manager) removeStaleDispatchers(live map[string]bool) {
	dir := filepath.Join(m.bpffs, dispatchersDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if live[e.Name()] {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := removePins(path); err != nil {
			m.log.Error("cannot remove the pins of a dispatcher without programs", "path", path, "error", err)
			continue
		}
		m.log.Warn("removed the pins of a dispatcher without programs", "path", path)
	}
}

// reconcileChain makes the XDP or TC hook named key run the chain its
// records say: the programs recorded loaded, in run order, each with its
// priority and proceed-on set, in the Manager's dispatcher mode, or a lone
// program on its own (a chain of one that an older bpfd left in a
// dispatcher is rebuilt so). When the
// chain the hook runs matches, it is adopted as it runs; otherwise (a crash
// interrupted a load or an unload, or the mode changed) it is rebuilt from
// the records. Records of interrupted loads and unloads are removed, and
// every record when the hook's interface is gone. It returns the ids of the
// programs it kept.
func (m *Manager) reconcileChain(key string, recs []*record) []ID {
	log := m.log.With("hook", key)
	hs := m.hooks.state(key)
	var want []*member
	for _, r := range recs {
		if r.State == stateLoaded {
			want = append(want, &member{rec: r})
		}
	}
	sortMembers(want)
	keepAll := func() []ID {
		hs.setChain(want, dispatcher.State{})
		ids := make([]ID, len(recs))
		for i, r := range recs {
			ids[i] = r.ID
		}
		return ids
	}

	gone, err := m.hookGone(key, recs[0])
	if err != nil {
		log.Error("cannot tell whether the hook is still there; its programs' records stay", "error", err)
		return keepAll()
	}
	// Opening the dispatcher adopts the chain the hook runs, or removes the
	// pins of one whose hook is gone.
	d, err := m.dispatcher(key, hs, chainHookOf(recs[0]))
	if err != nil {
		log.Error("cannot open the hook's dispatcher; its programs' records stay", "error", err)
		return keepAll()
	}
	for _, r := range recs {
		reason := ""
		switch {
		case gone != "":
			reason = "removed a program whose " + gone
		case r.State == stateLoading:
			reason = "rolled back a load that was interrupted"
		case r.State == stateUnloading:
			reason = "finished an unload that was interrupted"
		case r.State != stateLoaded:
			reason = fmt.Sprintf("removed a record in unknown state %q", r.State)
		default:
			continue
		}
		rlog := log.With("program_id", r.ID, "program", r.Name)
		if err := removePins(m.programDir(r.ID)); err != nil {
			rlog.Error("cannot remove the pins of a program; its record stays", "error", err)
			continue
		}
		if err := m.store.remove(r.ID); err != nil {
			rlog.Error("cannot delete a record", "error", err)
			continue
		}
		if r.State == stateLoaded {
			rlog.Warn(reason)
		} else {
			rlog.Info(reason)
		}
	}
	if gone != "" {
		m.closeDispatcher(key, hs)
		return nil
	}

	running := d.State()
	if len(want) == 0 {
		if running.ProgramID != 0 {
			log.Info("took the chain off the hook: it has no program recorded loaded", "was", slotIDs(running))
		}
		m.closeDispatcher(key, hs)
		return nil
	}
	for _, mb := range want {
		if i := slices.IndexFunc(running.Slots, func(s dispatcher.Slot) bool { return s.ID == uint64(mb.rec.ID) }); i >= 0 {
			m.repairMapPins(mb.rec, running.Slots[i].ProgramID, func() *slog.Logger { return log })
		}
	}
	if sameChain(running, want, m.chainMode(len(want))) {
		hs.setChain(want, running)
		log.Debug("adopted chain", "program_ids", memberIDs(want), "mode", running.Mode)
	} else {
		if err := m.applyChain(key, hs, chainHookOf(recs[0]), want, nil); err != nil {
			log.Error("cannot rebuild the hook's chain to match the records; it runs what it ran", "error", err)
			hs.setChain(want, running)
			return memberIDs(want)
		}
		log.Info("rebuilt the hook's chain to match the records", "was", slotIDs(running), "was_mode", running.Mode, "program_ids", memberIDs(want), "mode", m.chainMode(len(want)))
	}
	changed, err := m.syncMembers(hs)
	if err != nil {
		log.Error("cannot pin the chain's programs", "error", err)
	}
	if len(changed) > 0 {
		if err := m.store.put(changed...); err != nil {
			log.Error("cannot record the chain's programs", "error", err)
		}
	}
	return memberIDs(want)
}

// hookGone returns why the hook a chain's record names is gone ("" when it
// is there): its interface or network namespace is gone, or is another
// now.
func (m *Manager) hookGone(key string, r *record) (string, error) {
	t, err := r.Attach.resolve(r.Kind)
	switch {
	case errors.Is(err, ErrNotFound):
		return "interface is gone", nil
	case err != nil:
		return "", err
	case t.hook() != key:
		return "interface is gone (" + t.hook() + " now)", nil
	}
	return "", nil
}

// sameChain reports whether the chain st runs is want, in run order, each
// with its recorded priority and proceed-on set, built in mode.
func sameChain(st dispatcher.State, want []*member, mode dispatcher.Mode) bool {
	if st.Mode != mode || len(st.Slots) != len(want) {
		return false
	}
	for i, mb := range want {
		s, r := st.Slots[i], mb.rec
		po, err := proceedOn(r.Kind, proceedOnNames(r.Attach))
		if err != nil || s.ID != uint64(r.ID) || s.ProceedOn != po || s.Priority != hookPriority(r.Attach) {
			return false
		}
	}
	return true
}

// slotIDs returns the ids of the programs in the chain st runs.
func slotIDs(st dispatcher.State) []uint64 {
	ids := make([]uint64, len(st.Slots))
	for i, s := range st.Slots {
		ids[i] = s.ID
	}
	return ids
}

func memberIDs(ms []*member) []ID {
	ids := make([]ID, len(ms))
	for i, mb := range ms {
		ids[i] = mb.rec.ID
	}
	return ids
}

// recordLog returns the logger of r's reconciliation, made when first
// used: most records log nothing, and making a logger with attributes for
// each took a fifth of the reconciliation of a thousand programs.
func (m *Manager) recordLog(r *record) func() *slog.Logger {
	var l *slog.Logger
	return func() *slog.Logger {
		if l == nil {
			l = m.log.With("program_id", r.ID, "program", r.Name, "kind", r.Kind, "hook", r.Hook)
		}
		return l
	}
}

// reconcileRecord adopts a loaded program that is still attached, and
// otherwise removes what is left of it and its record. It reports whether
// it adopted the program.
func (m *Manager) reconcileRecord(r *record, log func() *slog.Logger) (bool, error) {
	var reason string
	switch r.State {
	case stateLoading:
		reason = "rolled back a load that was interrupted"
	case stateUnloading:
		reason = "finished an unload that was interrupted"
	case stateLoaded:
		gone, err := m.gone(r)
		if err != nil {
			// Unsure: keep serving the program rather than drop it.
			m.hooks.state(r.Hook).add(&member{rec: r})
			return true, fmt.Errorf("check whether it is attached: %w", err)
		}
		if gone == "" {
			m.repairPins(r, log)
			m.hooks.state(r.Hook).add(&member{rec: r})
			if m.log.Enabled(context.Background(), slog.LevelDebug) {
				log().Debug("adopted program")
			}
			return true, nil
		}
		reason = "removed a program whose " + gone
	default:
		reason = fmt.Sprintf("removed a record in unknown state %q", r.State)
	}
	if err := m.teardown(r); err != nil {
		return false, err
	}
	if err := m.store.remove(r.ID); err != nil {
		return false, fmt.Errorf("delete record: %w", err)
	}
	if r.State == stateLoaded {
		log().Warn(reason)
	} else {
		log().Info(reason)
	}
	return false, nil
}

// gone returns why a loaded record's program is no longer attached, or ""
// when it is: its link pin is there and the link still attached.
func (m *Manager) gone(r *record) (string, error) {
	l, err := link.LoadPinnedLink(m.linkPin(r.ID), nil)
	if errors.Is(err, os.ErrNotExist) {
		return "link pin is gone", nil
	}
	if err != nil {
		return "link pin cannot be read (" + err.Error() + ")", nil
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		return "", fmt.Errorf("link info: %w", err)
	}
	if uint32(info.Program) != r.ProgramID {
		return fmt.Sprintf("link runs kernel program %d, not %d", info.Program, r.ProgramID), nil
	}
	switch {
	case info.XDP() != nil && info.XDP().Ifindex == 0,
		info.TCX() != nil && info.TCX().Ifindex == 0:
		return "interface is gone", nil
	case info.Cgroup() != nil && info.Cgroup().CgroupId == 0:
		return "cgroup is gone", nil
	}
	return "", nil
}

// repairPins re-pins an adopted program's program and maps from their
// kernel ids when their pins were removed behind bpfd's back.
func (m *Manager) repairPins(r *record, log func() *slog.Logger) {
	if _, err := os.Stat(m.programPin(r.ID)); errors.Is(err, os.ErrNotExist) {
		if prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(r.ProgramID)); err == nil {
			if err := prog.Pin(m.programPin(r.ID)); err == nil {
				log().Info("re-pinned program")
			}
			prog.Close()
		}
	}
	m.repairMapPins(r, ebpf.ProgramID(r.ProgramID), log)
}

// repairMapPins re-pins the maps of the program recorded by r from their
// kernel ids when their pins were removed behind bpfd's back. Only maps
// that the kernel program progID, which runs it, uses are re-pinned: a map
// no program held may be gone and its id reused.
func (m *Manager) repairMapPins(r *record, progID ebpf.ProgramID, log func() *slog.Logger) {
	// Pins are missing only when removed behind bpfd's back: stat them
	// first, and ask the kernel about the program only then (its info is
	// the costliest part of an Open of a thousand programs).
	var missing []mapRecord
	for _, mr := range r.Maps {
		if _, err := os.Stat(m.mapPin(r.ID, mr.Name)); errors.Is(err, os.ErrNotExist) {
			missing = append(missing, mr)
		}
	}
	if len(missing) == 0 {
		return
	}
	prog, err := ebpf.NewProgramFromID(progID)
	if err != nil {
		return
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil {
		return
	}
	used, _ := info.MapIDs()
	for _, mr := range missing {
		path := m.mapPin(r.ID, mr.Name)
		if !slices.Contains(used, ebpf.MapID(mr.ID)) {
			continue
		}
		mp, err := ebpf.NewMapFromID(ebpf.MapID(mr.ID))
		if err != nil {
			continue
		}
		if os.MkdirAll(m.mapsDir(r.ID), 0o700) == nil && mp.Pin(path) == nil {
			log().Info("re-pinned map", "program_id", r.ID, "map", mr.Name)
		}
		mp.Close()
	}
}
