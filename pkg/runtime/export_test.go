package runtime

// SetStepHook sets the function called at each durable step of a load or
// unload, for the crash test; nil removes it.
func SetStepHook(f func(step string)) { stepHook = f }

// StoredRecords returns the id and state of every record in the store,
// including loads and unloads in progress.
func StoredRecords(m *Manager) (map[ID]string, error) {
	rs, err := m.store.store.all()
	if err != nil {
		return nil, err
	}
	out := make(map[ID]string, len(rs))
	for _, r := range rs {
		out[r.ID] = string(r.State)
	}
	return out, nil
}

// SetChainLone makes m run a lone XDP or TC program in a dispatcher chain,
// as bpfd did before lone programs ran directly, for the hooks it opens
// from now on: a test makes the state such a bpfd left.
func SetChainLone(m *Manager, on bool) { m.chainLone = on }
