package runtime

import (
	"context"
	"fmt"
	"slices"
)

// SetMapReaderNamespaces replaces the MapReaderNamespaces of the owner of
// the loaded programs with the given ids, in one commit, and returns the
// programs. Nothing else changes: the programs stay attached, their maps
// keep their contents. Every id is checked first: an unknown one, or one
// not loaded, is ErrProgramNotFound; namespaces that are not valid are
// ErrInvalid. Either way nothing changes.
func (m *Manager) SetMapReaderNamespaces(ctx context.Context, namespaces []string, ids ...ID) ([]Program, error) {
	if err := m.enter(); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	if len(ids) == 0 {
		return nil, fmt.Errorf("no program named: %w", ErrInvalid)
	}
	namespaces = slices.Clone(namespaces)
	rs, err := m.store.update(ids, func(r *record) error {
		if r.State != stateLoaded {
			return fmt.Errorf("program %d: %w", r.ID, ErrProgramNotFound)
		}
		o := r.Owner
		o.MapReaderNamespaces = namespaces
		if err := o.validate(); err != nil {
			return err
		}
		r.Owner = o
		return nil
	})
	if err != nil {
		return nil, err
	}
	d := m.describer()
	out := make([]Program, len(rs))
	for i, r := range rs {
		out[i] = d.describe(r, nil)
	}
	return out, nil
}
