package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// schemaVersion is the layout of the state store this bpfd reads and
// writes, recorded under meta/schema as a decimal number:
//
//	1  bpfd v0.1.0: records without an owner
//	2  every record has an owner
//
// Meta "boot" (store.go), the boot id the store was last opened under,
// came with version 2 and took no version of its own: it is a key an
// older reader ignores, and no released bpfd reads version 2 without it
// (v0.1.0 refuses any version but 1). A store without it (v0.1.0's) is one
// of another boot, checked whole before it is migrated.
//
// A bpfd opens a store of its own version; it migrates an older one
// forward, one version at a time (migrations), and refuses a newer one
// without changing it (ErrStoreTooNew). A change to what a record or
// bucket holds that an older bpfd would misread takes a new version and
// its migration; a field an older bpfd may ignore does not.
const schemaVersion = 2

// migration takes the store from version to-1 to version to. It runs
// inside the transaction that records version to, so a crash leaves the
// store at either version, whole, and the next Open starts again from
// there. It works on the stored bytes, not on today's record type, which
// later versions change, and it is idempotent: run again on its own
// output it changes nothing.
type migration struct {
	to   int
	what string
	run  func(tx *bolt.Tx) error
}

// migrations are every migration from version 1 on, in order.
var migrations = []migration{
	{to: 2, what: "give every record an owner: the uid that loaded it", run: migrateOwners},
}

// storedVersion returns the store's schema version, 0 for a store never
// written to (no meta bucket).
func storedVersion(tx *bolt.Tx) (int, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, nil
	}
	v := meta.Get(keySchema)
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("schema version %.16q: not a version bpfd writes (a damaged store)", v)
	}
	return n, nil
}

// migrate runs the migrations that take the store from version from to
// schemaVersion, each in its own transaction with the version it reaches,
// and returns what each did.
func migrate(db *bolt.DB, from int) ([]string, error) {
	var done []string
	for _, m := range migrations {
		if m.to <= from {
			continue
		}
		err := db.Update(func(tx *bolt.Tx) error {
			// Checked again inside the transaction: the version is what
			// the migration starts from.
			v, err := storedVersion(tx)
			if err != nil {
				return err
			}
			if v != m.to-1 {
				return fmt.Errorf("schema version %d, want %d to migrate to %d", v, m.to-1, m.to)
			}
			if err := m.run(tx); err != nil {
				return err
			}
			return tx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(m.to)))
		})
		if err != nil {
			return done, fmt.Errorf("migrate schema version %d to %d (%s): %w", m.to-1, m.to, m.what, err)
		}
		done = append(done, fmt.Sprintf("schema version %d to %d: %s", m.to-1, m.to, m.what))
	}
	return done, nil
}

// migrateOwners (1 to 2) writes an owner into every record without one:
// the uid that loaded the program, which is what version 1's readers took
// for its owner.
func migrateOwners(tx *bolt.Tx) error {
	b := tx.Bucket(bucketPrograms)
	if b == nil {
		return errors.New("no programs bucket")
	}
	updates := map[string][]byte{}
	err := b.ForEach(func(k, v []byte) error {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(v, &fields); err != nil {
			return fmt.Errorf("stored record %x: %w", k, err)
		}
		if o, ok := fields["owner"]; ok && string(o) != "null" {
			return nil
		}
		var loadedBy struct {
			UID uint32 `json:"uid"`
		}
		if lb, ok := fields["loadedBy"]; ok {
			if err := json.Unmarshal(lb, &loadedBy); err != nil {
				return fmt.Errorf("stored record %x: loadedBy: %w", k, err)
			}
		}
		owner, err := json.Marshal(Owner{UID: loadedBy.UID})
		if err != nil {
			return err
		}
		fields["owner"] = owner
		out, err := json.Marshal(fields)
		if err != nil {
			return fmt.Errorf("stored record %x: %w", k, err)
		}
		updates[string(k)] = out
		return nil
	})
	if err != nil {
		return err
	}
	// A bucket must not change under ForEach.
	for k, v := range updates {
		if err := b.Put([]byte(k), v); err != nil {
			return err
		}
	}
	return nil
}
