package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
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
	for _, r := range rs {
		if err := ctx.Err(); err != nil {
			return err
		}
		log := m.log.With("program_id", r.ID, "program", r.Name, "kind", r.Kind, "hook", r.Hook)
		adopted, err := m.reconcileRecord(r, log)
		if err != nil {
			log.Error("cannot reconcile program; its record stays", "state", r.State, "error", err)
		}
		if adopted || err != nil {
			kept[r.ID.String()] = true
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
	return nil
}

// reconcileRecord adopts a loaded program that is still attached, and
// otherwise removes what is left of it and its record. It reports whether
// it adopted the program.
func (m *Manager) reconcileRecord(r *record, log *slog.Logger) (bool, error) {
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
			m.hooks.state(r.Hook).add(r.ID, hookOrder(r.Attach))
			return true, fmt.Errorf("check whether it is attached: %w", err)
		}
		if gone == "" {
			m.repairPins(r, log)
			m.hooks.state(r.Hook).add(r.ID, hookOrder(r.Attach))
			log.Debug("adopted program")
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
		log.Warn(reason)
	} else {
		log.Info(reason)
	}
	return false, nil
}

// gone returns why a loaded record's program is no longer attached, or ""
// when it is: its link pin is there and the link still attached, or for tc
// its filter is on the interface.
func (m *Manager) gone(r *record) (string, error) {
	if r.TCFilter != nil {
		id, err := r.TCFilter.programID()
		if err != nil {
			return "", err
		}
		if id == 0 {
			return "tc filter is gone", nil
		}
		if id != r.ProgramID {
			return fmt.Sprintf("tc filter runs kernel program %d, not %d", id, r.ProgramID), nil
		}
		return "", nil
	}
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
// Only maps the program itself uses are re-pinned: a map no program held
// may be gone and its id reused.
func (m *Manager) repairPins(r *record, log *slog.Logger) {
	prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(r.ProgramID))
	if err != nil {
		return
	}
	defer prog.Close()
	if _, err := os.Stat(m.programPin(r.ID)); errors.Is(err, os.ErrNotExist) {
		if err := prog.Pin(m.programPin(r.ID)); err == nil {
			log.Info("re-pinned program")
		}
	}
	info, err := prog.Info()
	if err != nil {
		return
	}
	used, _ := info.MapIDs()
	for _, mr := range r.Maps {
		path := m.mapPin(r.ID, mr.Name)
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) || !slices.Contains(used, ebpf.MapID(mr.ID)) {
			continue
		}
		mp, err := ebpf.NewMapFromID(ebpf.MapID(mr.ID))
		if err != nil {
			continue
		}
		if os.MkdirAll(m.mapsDir(r.ID), 0o700) == nil && mp.Pin(path) == nil {
			log.Info("re-pinned map", "map", mr.Name)
		}
		mp.Close()
	}
}
