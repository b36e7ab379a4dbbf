package runtime

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// The state store is a bbolt file, <state dir>/bpfd.db, with three buckets:
//
//	meta      "schema" -> the schema version (schema.go), e.g. "2";
//	          "bpffs" -> the bpffs directory the records' pins live in;
//	          "boot" -> the boot id of the kernel it was last opened under
//	programs  8-byte big-endian ID -> JSON record
//	objects   hex SHA-256 -> the ELF object of programs in the chain of an
//	          XDP or TC hook, for rebuilding the chain after a restart; kept
//	          while a record names it
//
// bbolt commits are atomic, so a record is either wholly there or not. A
// record's state says how far its program got (see record).
//
// Commits are not synced to the disk (bbolt's NoSync): every record
// describes kernel objects, which live only as long as the kernel that
// loaded them, and the kernel's page cache outlives bpfd. A bpfd that dies
// (SIGKILL included) leaves the file exactly as its last commit wrote it;
// only the death of the kernel itself (a power loss, a kernel crash) can
// lose or tear unsynced writes, and it takes every program the records
// describe with it. So the store is synced once per boot: meta "boot"
// holds the boot id of the kernel it was last opened under, and an Open
// under another kernel checks the whole file. A store that cannot be
// opened or fails the check, while the bpffs holds no pins of bpfd's (no
// program or chain of this kernel depends on it), is moved aside and
// replaced by a fresh one; with pins it is an error, as it is under the
// kernel that wrote it. A store refused for its schema version (a newer
// bpfd's, or a version bpfd never writes) is refused under any kernel,
// never replaced.
const storeFile = "bpfd.db"

var (
	bucketMeta     = []byte("meta")
	bucketPrograms = []byte("programs")
	bucketObjects  = []byte("objects")
	keySchema      = []byte("schema")
	keyBPFFS       = []byte("bpffs")
	keyBoot        = []byte("boot")
)

// recordState is how far a program got. Records are written "loading"
// before anything is attached or pinned, become "loaded" once every pin is in
// place, and "unloading" before anything is removed. Open rolls back
// "loading" records and finishes "unloading" ones.
type recordState string

const (
	stateLoading   recordState = "loading"
	stateLoaded    recordState = "loaded"
	stateUnloading recordState = "unloading"
)

// record is a program's entry in the store.
type record struct {
	ID    ID          `json:"id"`
	State recordState `json:"state"`

	Name       string            `json:"name"`
	Kind       progtype.Kind     `json:"kind"`
	Object     string            `json:"object"`
	Attach     AttachSpec        `json:"-"`
	Hook       string            `json:"hook"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	Globals    map[string][]byte `json:"globals,omitempty"`
	MapOwnerID ID                `json:"mapOwnerId,omitempty"`
	Provenance Provenance        `json:"provenance"`
	LoadedBy   Requester         `json:"loadedBy"`
	LoadedAt   time.Time         `json:"loadedAt"`
	// Owner is who the program belongs to. Records written before owners
	// existed (schema version 1) get LoadedBy.UID's when migrated.
	Owner Owner `json:"owner"`

	// Kernel objects, set when the record is loaded. ProgramID is 0 for a
	// program in a linked chain, which runs as part of the chain's one
	// program; LinkID is 0 for every program in a chain.
	ProgramID uint32      `json:"programId,omitempty"`
	LinkID    uint32      `json:"linkId,omitempty"`
	Maps      []mapRecord `json:"maps,omitempty"`
	// Chain is set, in the loading record already, for a program in the
	// chain of an XDP or TC hook.
	Chain *chainRecord `json:"chain,omitempty"`
	// Kernel keeps what never changes of the kernel program ProgramID
	// names, read when it was loaded (kernelview.go); not set for a
	// program in a chain, or by a bpfd before it. An older bpfd ignores
	// it.
	Kernel *kernelRecord `json:"kernel,omitempty"`
}

// chainRecord is what a program in the chain of an XDP or TC hook records
// besides its attach spec.
type chainRecord struct {
	// Mode is the dispatcher mode of the chain that runs the program.
	Mode dispatcher.Mode `json:"mode"`
	// Ifindex is the interface's index, to find the hook's dispatcher again
	// when the interface is gone.
	Ifindex int `json:"ifindex"`
	// Object is the hex SHA-256 of the program's ELF object, kept in the
	// objects bucket for rebuilds of the chain after a restart.
	Object string `json:"object"`
}

type mapRecord struct {
	Name string `json:"name"`
	ID   uint32 `json:"id"`
}

// MarshalJSON stores the attach spec as a JSON object; UnmarshalJSON decodes
// it by the record's kind.
func (r *record) MarshalJSON() ([]byte, error) {
	attach, err := json.Marshal(r.Attach)
	if err != nil {
		return nil, err
	}
	type plain record
	return json.Marshal(struct {
		*plain
		Attach json.RawMessage `json:"attach"`
	}{(*plain)(r), attach})
}

func (r *record) UnmarshalJSON(data []byte) error {
	type plain record
	var v struct {
		*plain
		Attach json.RawMessage `json:"attach"`
	}
	v.plain = (*plain)(r)
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	spec, err := decodeAttach(r.Kind, v.Attach)
	if err != nil {
		return err
	}
	r.Attach = spec
	return nil
}

// errNoObject: the store has no ELF object with a chain record's sum, which
// only damage to the store can cause.
var errNoObject = errors.New("not in the state store")

// store is the bbolt state store.
type store struct {
	db *bolt.DB
	// replaced is where openStore moved a damaged store it replaced; ""
	// for none.
	replaced string
	// migrated says what opening it migrated, for the log.
	migrated []string
}

// errDamaged marks a store openBolt found damaged: one openStore may move
// aside and replace, unlike one it refuses (in use, newer, another bpffs's).
var errDamaged = errors.New("damaged")

// openStore opens (creating) the store in dir and checks that it was used
// with bpffs, or records bpffs in a new store. It refuses, changing
// nothing, a store of a newer schema version (ErrStoreTooNew), of another
// bpffs (ErrConflict) or in use by another process (ErrConflict), and
// migrates one of an older version forward. Under a kernel other than the
// one it was last opened under, it checks the whole store first, and
// replaces a damaged one when bpffs holds no pins of bpfd's (see the
// package's store comment).
func openStore(dir, bpffs string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir %s: %w", dir, err)
	}
	boot, err := bootID()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, storeFile)
	db, err := openBolt(path, boot)
	var aside string
	if err != nil && !errors.Is(err, errDamaged) {
		return nil, err
	}
	if err != nil {
		if pinned := hasPins(bpffs); pinned != "" {
			return nil, fmt.Errorf("%w (not replaced: %s depends on it)", err, pinned)
		}
		aside = fmt.Sprintf("%s.damaged-%d", path, time.Now().Unix())
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("%w (moving it aside: %v)", err, rerr)
		}
		if db, err = openBolt(path, boot); err != nil {
			return nil, err
		}
		// The lost store's ids cannot be read: new ones start above any
		// it can have given out (at fewer than one a second since 1970).
		err = db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bucketPrograms)
			if err != nil {
				return err
			}
			return b.SetSequence(uint64(time.Now().Unix()))
		})
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("state store %s: %w", path, err)
		}
	}
	s := &store{db: db, replaced: aside}
	if err := s.prepare(bpffs, boot); err != nil {
		db.Close()
		return nil, fmt.Errorf("state store %s: %w", path, err)
	}
	return s, nil
}

// prepare checks the store's bpffs without writing, migrates a store of an
// older schema version, creates a new store's buckets, records the boot id
// and syncs: the one sync of this boot before Close. A store already
// opened under this boot, at this schema version, is left as it is,
// unsynced: that Open synced it, and every commit since lives in this
// kernel's page cache.
func (s *store) prepare(bpffs, boot string) error {
	var version int
	settled := false
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		if version, err = checkVersion(tx); err != nil || version == 0 {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		v := meta.Get(keyBPFFS)
		if v != nil && string(v) != bpffs {
			return fmt.Errorf("its programs are pinned under %s, not %s; start bpfd with that bpffs dir or a fresh state dir: %w", v, bpffs, ErrConflict)
		}
		settled = version == schemaVersion && v != nil && string(meta.Get(keyBoot)) == boot &&
			tx.Bucket(bucketPrograms) != nil && tx.Bucket(bucketObjects) != nil
		return nil
	})
	if err != nil || settled {
		return err
	}
	if version > 0 && version < schemaVersion {
		if s.migrated, err = migrate(s.db, version); err != nil {
			return err
		}
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		for _, b := range [][]byte{bucketPrograms, bucketObjects} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if version == 0 {
			if err := meta.Put(keySchema, []byte(strconv.Itoa(schemaVersion))); err != nil {
				return err
			}
		}
		if string(meta.Get(keyBoot)) != boot {
			if err := meta.Put(keyBoot, []byte(boot)); err != nil {
				return err
			}
		}
		if meta.Get(keyBPFFS) == nil {
			return meta.Put(keyBPFFS, []byte(bpffs))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.db.Sync()
}

// checkVersion returns the store's schema version, 0 for a store never
// written to, and refuses one this bpfd does not read: newer than its own
// (ErrStoreTooNew) or not a version bpfd writes.
func checkVersion(tx *bolt.Tx) (int, error) {
	version, err := storedVersion(tx)
	if err != nil {
		return 0, err
	}
	if version > schemaVersion {
		return 0, fmt.Errorf("schema version %d (this bpfd reads up to %d): %w; start that bpfd or a newer one, or move the state dir aside to start afresh", version, schemaVersion, ErrStoreTooNew)
	}
	return version, nil
}

// openBolt opens the bbolt file at path, unsynced. It refuses a store of a
// schema version this bpfd does not read before looking further: a newer
// bpfd's records need not decode as this one's. When the store's meta
// "boot" is not boot, it checks every page and decodes every record: the
// file may have lost writes with the kernel that made them. A store that
// cannot be opened or fails the check is an error wrapping errDamaged.
func openBolt(path, boot string) (db *bolt.DB, err error) {
	var file *os.File
	openFile := func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		file = f
		return f, err
	}
	defer func() {
		// bbolt panics on some damaged pages, in Open too.
		if p := recover(); p != nil {
			err = fmt.Errorf("state store %s: %w: %v", path, errDamaged, p)
			if db == nil && file != nil {
				file.Close()
			}
		}
		if err != nil && db != nil {
			db.Close()
			db = nil
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoSync: true, OpenFile: openFile})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("state store %s: in use by another process: %w", path, ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("state store %s: %w: %w", path, errDamaged, err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		if _, err := checkVersion(tx); err != nil {
			return err
		}
		if meta := tx.Bucket(bucketMeta); meta != nil && string(meta.Get(keyBoot)) == boot {
			return nil
		}
		var damage error
		for err := range tx.Check() { // drained: the check runs until it closes the channel
			if damage == nil {
				damage = fmt.Errorf("%w: %w", errDamaged, err)
			}
		}
		if damage != nil {
			return damage
		}
		if b := tx.Bucket(bucketPrograms); b != nil {
			return b.ForEach(func(k, v []byte) error {
				var r record
				if err := json.Unmarshal(v, &r); err != nil {
					return fmt.Errorf("%w: record %x: %w", errDamaged, k, err)
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return db, fmt.Errorf("state store %s: %w", path, err)
	}
	return db, nil
}

// bootID returns the running kernel's boot id, which every boot changes.
var bootID = func() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("boot id: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// hasPins returns the first pin of bpfd's under bpffs (a program's
// directory, named by its id, or a hook's chain), "" for none.
func hasPins(bpffs string) string {
	ents, _ := os.ReadDir(bpffs)
	for _, e := range ents {
		if _, err := strconv.ParseUint(e.Name(), 10, 64); err == nil {
			return filepath.Join(bpffs, e.Name())
		}
	}
	dispatchers := filepath.Join(bpffs, dispatchersDir)
	if ents, _ := os.ReadDir(dispatchers); len(ents) > 0 {
		return dispatchers
	}
	return ""
}

// close syncs the store and closes it.
func (s *store) close() error { return errors.Join(s.db.Sync(), s.db.Close()) }

func idKey(id ID) []byte { return binary.BigEndian.AppendUint64(nil, uint64(id)) }

// get returns the record of id, or an error wrapping ErrProgramNotFound.
func (s *store) get(id ID) (*record, error) {
	var r *record
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketPrograms).Get(idKey(id))
		if v == nil {
			return fmt.Errorf("program %d: %w", id, ErrProgramNotFound)
		}
		r = new(record)
		if err := json.Unmarshal(v, r); err != nil {
			return fmt.Errorf("program %d: stored record: %w", id, err)
		}
		return nil
	})
	return r, err
}

// all returns every record, by id.
func (s *store) all() ([]*record, error) {
	var rs []*record
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPrograms).ForEach(func(k, v []byte) error {
			r := new(record)
			if err := json.Unmarshal(v, r); err != nil {
				return fmt.Errorf("stored record %x: %w", k, err)
			}
			rs = append(rs, r)
			return nil
		})
	})
	return rs, err
}

// create gives each record a fresh id and writes them all, with the ELF
// objects their chain records name (by hex SHA-256), in one commit.
func (s *store) create(rs []*record, fill func(*record), objects map[string][]byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPrograms)
		for _, r := range rs {
			n, err := b.NextSequence()
			if err != nil {
				return err
			}
			r.ID = ID(n)
			fill(r)
			if err := putRecord(b, r); err != nil {
				return err
			}
		}
		ob := tx.Bucket(bucketObjects)
		for sum, elf := range objects {
			if ob.Get([]byte(sum)) == nil {
				if err := ob.Put([]byte(sum), elf); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// put writes the records in one commit.
func (s *store) put(rs ...*record) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPrograms)
		for _, r := range rs {
			if err := putRecord(b, r); err != nil {
				return err
			}
		}
		return nil
	})
}

// remove deletes the records of ids, and the objects no record names any
// more, in one commit.
func (s *store) remove(ids ...ID) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPrograms)
		unused := map[string]bool{}
		for _, id := range ids {
			if sum := recordObject(b.Get(idKey(id))); sum != "" {
				unused[sum] = true
			}
			if err := b.Delete(idKey(id)); err != nil {
				return err
			}
		}
		if len(unused) == 0 {
			return nil
		}
		err := b.ForEach(func(_, v []byte) error {
			delete(unused, recordObject(v))
			return nil
		})
		if err != nil {
			return err
		}
		ob := tx.Bucket(bucketObjects)
		for sum := range unused {
			if err := ob.Delete([]byte(sum)); err != nil {
				return err
			}
		}
		return nil
	})
}

// recordObject returns the object a stored record's chain names; "" for
// none.
func recordObject(v []byte) string {
	var r struct {
		Chain *chainRecord `json:"chain"`
	}
	if v == nil || json.Unmarshal(v, &r) != nil || r.Chain == nil {
		return ""
	}
	return r.Chain.Object
}

// object returns the ELF object with hex SHA-256 sum.
func (s *store) object(sum string) ([]byte, error) {
	var elf []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketObjects).Get([]byte(sum))
		if v == nil {
			return fmt.Errorf("object %s: %w", sum, errNoObject)
		}
		elf = bytes.Clone(v)
		return nil
	})
	return elf, err
}

func putRecord(b *bolt.Bucket, r *record) error {
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("program %d: encode record: %w", r.ID, err)
	}
	return b.Put(idKey(r.ID), v)
}

// update applies change to the records of ids in one commit: all of them
// or, when one is missing (ErrProgramNotFound) or change fails, none.
func (s *store) update(ids []ID, change func(*record) error) ([]*record, error) {
	var rs []*record
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPrograms)
		for _, id := range ids {
			v := b.Get(idKey(id))
			if v == nil {
				return fmt.Errorf("program %d: %w", id, ErrProgramNotFound)
			}
			r := new(record)
			if err := json.Unmarshal(v, r); err != nil {
				return fmt.Errorf("program %d: stored record: %w", id, err)
			}
			if err := change(r); err != nil {
				return err
			}
			if err := putRecord(b, r); err != nil {
				return err
			}
			rs = append(rs, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rs, nil
}
