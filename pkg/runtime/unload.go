package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Unload detaches the programs with the given ids, removes their pins and
// deletes their records. It checks every id first: when one is unknown
// (ErrProgramNotFound) nothing is unloaded.
//
// Unload is crash-safe: each record is marked "unloading" before anything
// is removed and deleted last, so Open after a crash finishes the job.
func (m *Manager) Unload(ctx context.Context, ids ...ID) error {
	if err := m.enter(); err != nil {
		return err
	}
	defer m.mu.RUnlock()
	m.retryRemovals()

	for _, id := range ids {
		r, err := m.store.get(id)
		if err != nil {
			return err
		}
		if r.State == stateLoading {
			return fmt.Errorf("program %d: %w", id, ErrProgramNotFound)
		}
	}
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := m.unload(id); err != nil {
			return err
		}
	}
	return nil
}

// unload unloads one program while holding its hook.
func (m *Manager) unload(id ID) error {
	r, err := m.store.get(id)
	if err != nil {
		return err
	}
	hooks, unlock := m.hooks.lock(r.Hook)
	defer unlock()
	hs := hooks[r.Hook]
	// Another client may have unloaded it while this one waited for the hook.
	if r, err = m.store.get(id); err != nil {
		return err
	}
	if r.State == stateLoading {
		return fmt.Errorf("program %d: %w", id, ErrProgramNotFound)
	}
	if r.State != stateUnloading {
		r.State = stateUnloading
		if err := m.store.put(r); err != nil {
			return fmt.Errorf("program %d: record unload: %w", id, err)
		}
		step("unload:recorded")
	}
	if r.Chain != nil {
		if err := m.leaveChain(r, hs); err != nil {
			// The hook still runs the program: it stays loaded.
			r.State = stateLoaded
			if perr := m.store.put(r); perr != nil {
				m.log.Error("unload failed and its record stays unloading until bpfd restarts", "program_id", id, "error", perr)
			}
			return fmt.Errorf("program %s (id %d): %w", r.Name, id, err)
		}
	} else if err := m.teardown(r); err != nil {
		return fmt.Errorf("program %d: %w", id, err)
	}
	if err := m.store.remove(id); err != nil {
		return fmt.Errorf("program %d: delete record: %w", id, err)
	}
	step("unload:deleted")
	hs.remove(id)
	m.kernel.forget(ebpf.ProgramID(r.ProgramID))
	m.clearFault(id)
	return nil
}

// leaveChain rebuilds the chain of a program's XDP or TC hook without it,
// or takes the chain off the hook when it was the last, and removes its
// pins. When the hook is gone (its interface was deleted), so is its chain:
// the program just leaves the hook's state, and the last one to leave
// removes the dispatcher's pins. The caller holds the hook.
func (m *Manager) leaveChain(r *record, hs *hookState) error {
	rest := slices.DeleteFunc(hs.snapshot(), func(mb *member) bool { return mb.rec.ID == r.ID })
	gone, err := m.hookGone(r.Hook, r)
	switch {
	case err != nil:
		return err
	case gone != "" && len(rest) > 0:
		m.log.Info("unloading a program whose "+gone, "program_id", r.ID, "program", r.Name, "hook", r.Hook)
		hs.setChain(rest, hs.chainState())
	default:
		if err := m.applyChain(r.Hook, hs, chainHookOf(r), rest, nil); err != nil {
			return err
		}
		step("unload:unchained")
		// The one left runs on its own now.
		m.recordMembers(r.Hook, hs)
		return removePins(m.programDir(r.ID))
	}
	step("unload:unchained")
	return removePins(m.programDir(r.ID))
}

// teardown detaches a recorded program that has a link of its own and
// removes its pins. It is idempotent, so that it can finish what a crash
// interrupted.
func (m *Manager) teardown(r *record) error {
	// Detach explicitly: a link pinned elsewhere or held open by another
	// process would otherwise stay attached.
	if l, err := link.LoadPinnedLink(m.linkPin(r.ID), nil); err == nil {
		err := l.Detach()
		l.Close()
		if err != nil && !errors.Is(err, link.ErrNotSupported) {
			m.log.Warn("detach link", "program_id", r.ID, "error", err)
		}
	}
	step("unload:detached")
	return removePins(m.programDir(r.ID))
}
