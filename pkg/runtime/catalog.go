package runtime

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
)

// catalog is the state store with every record also held in memory, as the
// store holds it, so that Get, List and Unload read no store and decode no
// JSON. Writes go to the store first; the memory follows each commit that
// succeeded, so it never holds what the store does not.
//
// The records in memory are never modified: get and all hand out copies
// their callers may change, and loaded hands out the records themselves, to
// be read only.
type catalog struct {
	*store

	mu   sync.RWMutex
	recs map[ID]*record
	// labels are the records' metadata maps, shared (compact.go).
	labels labelSets
}

// openCatalog opens the store in dir (see openStore) and reads its records
// into memory.
func openCatalog(dir, bpffs string) (*catalog, error) {
	s, err := openStore(dir, bpffs)
	if err != nil {
		return nil, err
	}
	rs, err := s.all()
	if err != nil {
		s.close()
		return nil, fmt.Errorf("state store: %w", err)
	}
	c := &catalog{store: s, recs: make(map[ID]*record, len(rs))}
	for _, r := range rs {
		c.keep(r)
	}
	return c, nil
}

// get returns a copy of the record of id, or an error wrapping
// ErrProgramNotFound.
func (c *catalog) get(id ID) (*record, error) {
	c.mu.RLock()
	r := c.recs[id]
	c.mu.RUnlock()
	if r == nil {
		return nil, fmt.Errorf("program %d: %w", id, ErrProgramNotFound)
	}
	return r.clone(), nil
}

// all returns a copy of every record, by id.
func (c *catalog) all() ([]*record, error) {
	c.mu.RLock()
	out := make([]*record, 0, len(c.recs))
	for _, r := range c.recs {
		out = append(out, r.clone())
	}
	c.mu.RUnlock()
	sortByID(out)
	return out, nil
}

// loaded returns the records in state loaded, by id. They are the
// catalog's own: read them, never change them.
func (c *catalog) loaded() []*record {
	c.mu.RLock()
	out := make([]*record, 0, len(c.recs))
	for _, r := range c.recs {
		if r.State == stateLoaded {
			out = append(out, r)
		}
	}
	c.mu.RUnlock()
	sortByID(out)
	return out
}

// isLoaded reports whether the record of id is in state loaded.
func (c *catalog) isLoaded(id ID) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r := c.recs[id]
	return r != nil && r.State == stateLoaded
}

// create is store.create, then remembers the records.
func (c *catalog) create(rs []*record, fill func(*record), objects map[string][]byte) error {
	if err := c.store.create(rs, fill, objects); err != nil {
		return err
	}
	c.remember(rs)
	return nil
}

// put is store.put, then remembers the records.
func (c *catalog) put(rs ...*record) error {
	if err := c.store.put(rs...); err != nil {
		return err
	}
	c.remember(rs)
	return nil
}

// update is store.update, then remembers the records it changed.
func (c *catalog) update(ids []ID, change func(*record) error) ([]*record, error) {
	rs, err := c.store.update(ids, change)
	if err != nil {
		return nil, err
	}
	c.remember(rs)
	return rs, nil
}

// remove is store.remove, then forgets the records.
func (c *catalog) remove(ids ...ID) error {
	if err := c.store.remove(ids...); err != nil {
		return err
	}
	c.mu.Lock()
	for _, id := range ids {
		if r := c.recs[id]; r != nil {
			c.labels.release(r.Metadata)
			delete(c.recs, id)
		}
	}
	c.mu.Unlock()
	return nil
}

// remember keeps the records as the store now holds them: each goes
// through its stored form, so that memory and store never differ (in
// defaults the decoder fills in, say).
func (c *catalog) remember(rs []*record) {
	stored := make([]*record, len(rs))
	for i, r := range rs {
		stored[i] = storedForm(r)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range stored {
		c.keep(r)
	}
}

// keep holds r, compacted (compact.go), in place of the record of its id;
// the caller holds c.mu or is the only one to have c.
func (c *catalog) keep(r *record) {
	compactStrings(r)
	if old := c.recs[r.ID]; old != nil {
		c.labels.release(old.Metadata)
	}
	r.Metadata = c.labels.share(r.Metadata)
	c.recs[r.ID] = r
}

// storedForm returns r as reading it back from the store would. The store
// has just encoded it the same way, so neither step fails; should one, a
// copy of r is the next best thing.
func storedForm(r *record) *record {
	data, err := json.Marshal(r)
	if err != nil {
		return r.clone()
	}
	out := new(record)
	if err := json.Unmarshal(data, out); err != nil {
		return r.clone()
	}
	return out
}

// clone returns a copy of r that its caller may change: the fields that
// Load, Unload and chain rebuilds set are r's own, the rest (maps, slices)
// is shared and never changed in place.
func (r *record) clone() *record {
	c := *r
	if r.Chain != nil {
		ch := *r.Chain
		c.Chain = &ch
	}
	return &c
}

func sortByID(rs []*record) {
	slices.SortFunc(rs, func(a, b *record) int { return cmp.Compare(a.ID, b.ID) })
}
