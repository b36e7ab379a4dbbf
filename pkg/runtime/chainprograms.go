package runtime

// ChainPrograms returns the kernel programs that run the chains of XDP and
// TC hooks, by kernel id, each with the name of its hook: every hook's
// dispatcher program and, in freplace mode, the extension programs its
// members run as; a lone program, which runs with no dispatcher, is its
// hook's too. The node inventory tells them apart from programs bpfd
// did not load.
func (m *Manager) ChainPrograms() map[uint32]string {
	m.hooks.mu.Lock()
	keys := make(map[string]*hookState, len(m.hooks.hooks))
	for k, h := range m.hooks.hooks {
		keys[k] = h
	}
	m.hooks.mu.Unlock()
	out := map[uint32]string{}
	for key, h := range keys {
		st := h.chainState()
		if st.ProgramID != 0 {
			out[uint32(st.ProgramID)] = key
		}
		for _, s := range st.Slots {
			if s.ProgramID != 0 {
				out[uint32(s.ProgramID)] = key
			}
		}
	}
	return out
}
