package runtime

import (
	"bytes"
	"path/filepath"

	"github.com/cilium/ebpf"

	bolt "go.etcd.io/bbolt"
)

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

// AlterStoredObjects changes one byte of every ELF object the state store
// in stateDir keeps for chain rebuilds, as damage or an attacker at rest
// would, and returns how many it changed. The store must be closed.
func AlterStoredObjects(stateDir string) (int, error) {
	db, err := bolt.Open(filepath.Join(stateDir, storeFile), 0o600, nil)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	n := 0
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketObjects)
		altered := map[string][]byte{}
		err := b.ForEach(func(k, v []byte) error {
			elf := bytes.Clone(v)
			elf[len(elf)-1] ^= 0xff
			altered[string(k)] = elf
			return nil
		})
		if err != nil {
			return err
		}
		for k, elf := range altered {
			if err := b.Put([]byte(k), elf); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// KnowsProgram reports whether the Manager knows the facts of the kernel
// program id without asking the kernel.
func KnowsProgram(m *Manager, id uint32) bool {
	m.kernel.mu.Lock()
	defer m.kernel.mu.Unlock()
	return m.kernel.facts[ebpf.ProgramID(id)] != nil
}
