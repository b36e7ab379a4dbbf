package runtime

import "sync"

// faults are what the Manager found wrong with programs it keeps: a chain's
// stored object that does not match its digest (ErrIntegrity). They show in
// Program.Fault until the program is unloaded; they are found again at the
// next Open when the cause stays.
type faults struct {
	mu sync.Mutex
	m  map[ID]string
}

// markFault notes what is wrong with program id, and logs it once.
func (m *Manager) markFault(id ID, fault string) {
	m.faults.mu.Lock()
	defer m.faults.mu.Unlock()
	if m.faults.m == nil {
		m.faults.m = map[ID]string{}
	}
	if m.faults.m[id] != fault {
		m.log.Error("program marked faulty", "program_id", id, "fault", fault)
	}
	m.faults.m[id] = fault
}

// fault returns what is wrong with program id; "" when nothing is known.
func (m *Manager) fault(id ID) string {
	m.faults.mu.Lock()
	defer m.faults.mu.Unlock()
	return m.faults.m[id]
}

// clearFault forgets what was wrong with program id, once unloaded.
func (m *Manager) clearFault(id ID) {
	m.faults.mu.Lock()
	defer m.faults.mu.Unlock()
	delete(m.faults.m, id)
}
