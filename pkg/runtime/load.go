package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

// Load fetches the bytecode req names from the Source, checks the request
// against it, loads the programs with the kernel's verifier, attaches each
// to its hook, pins program, link and maps under <bpffs>/<id>/ and records
// them. It returns the programs in the order of the request.
//
// Load is all or nothing: when it fails, nothing it did stays loaded,
// attached, pinned or recorded, and it holds no descriptors. Errors wrap
// ErrInvalid, ErrNotFound, ErrPermission, ErrConflict, ErrUnsupported or
// ErrVerifier (a *VerifierError with the log's tail) where one applies, or
// the Source's error.
//
// Load is crash-safe: the records are written (state "loading") before
// anything is attached or pinned, and marked loaded only once everything
// is pinned, so Open after a crash at any point finds and removes what an
// interrupted Load left.
func (m *Manager) Load(ctx context.Context, req LoadRequest) ([]Program, error) {
	if err := m.enter(); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()

	m.retryRemovals()
	if err := req.validate(); err != nil {
		return nil, err
	}
	policy, _ := ParsePullPolicy(string(req.PullPolicy))
	bc, err := m.src.Bytecode(ctx, req.Reference, policy)
	if err != nil {
		return nil, fmt.Errorf("bytecode %s: %w", req.Reference, err)
	}
	if bc == nil {
		return nil, fmt.Errorf("bytecode %s: source returned none: %w", req.Reference, ErrNotFound)
	}
	l, err := plan(&req, bc)
	if err != nil {
		return nil, err
	}
	defer l.close()

	for _, p := range l.programs {
		if p.target, err = p.attach.resolve(p.kind); err != nil {
			return nil, fmt.Errorf("program %s: %w", p.name, err)
		}
	}
	if err := m.loadKernelObjects(l); err != nil {
		return nil, err
	}

	hooks, unlock := m.hooks.lock(l.hooks()...)
	defer unlock()
	if err := checkHooks(l, hooks); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.begin(l); err != nil {
		return nil, fmt.Errorf("record load: %w", err)
	}
	step("load:recorded")
	if err := m.attachAndPin(l); err != nil {
		m.rollback(l)
		return nil, err
	}
	if err := m.commit(l); err != nil {
		m.rollback(l)
		return nil, fmt.Errorf("record load: %w", err)
	}
	step("load:committed")
	for _, p := range l.programs {
		hooks[p.rec.Hook].add(p.rec.ID, hookOrder(p.rec.Attach))
	}

	d := m.describer()
	out := make([]Program, len(l.programs))
	for i, p := range l.programs {
		out[i] = d.describe(p.rec, p.prog)
	}
	return out, nil
}

// loadKernelObjects creates each object's maps (reusing the map owner's),
// then loads each requested program against them. Loading programs one by
// one tells which one the verifier rejected.
func (m *Manager) loadKernelObjects(l *loading) error {
	if err := m.openOwnerMaps(l); err != nil {
		return err
	}
	shared := 0
	for _, obj := range l.objects {
		replacements := map[string]*ebpf.Map{}
		for name, ms := range obj.spec.Maps {
			om := l.ownerMaps[name]
			if om == nil || constantData(name) {
				continue
			}
			// The loader makes data sections (.bss, .data) mmapable; compare
			// as it will.
			want := ms.Copy()
			want.Flags |= om.Flags() & unix.BPF_F_MMAPABLE
			if err := want.Compatible(om); err != nil {
				return fmt.Errorf("map owner %d: map %s does not fit %s: %v: %w", l.req.MapOwnerID, name, obj.name, err, ErrInvalid)
			}
			replacements[name] = om
		}
		shared += len(replacements)

		mapsOnly := &ebpf.CollectionSpec{Maps: obj.spec.Maps, Variables: obj.spec.Variables, Types: obj.spec.Types, ByteOrder: obj.spec.ByteOrder}
		coll, err := ebpf.NewCollectionWithOptions(mapsOnly, ebpf.CollectionOptions{MapReplacements: replacements})
		if err != nil {
			return fmt.Errorf("object %s: create maps: %w", obj.name, kernelError(err))
		}
		obj.maps = coll

		for _, p := range obj.programs {
			one := &ebpf.CollectionSpec{
				Maps:      obj.spec.Maps,
				Programs:  map[string]*ebpf.ProgramSpec{p.name: p.spec},
				Types:     obj.spec.Types,
				ByteOrder: obj.spec.ByteOrder,
			}
			c, err := ebpf.NewCollectionWithOptions(one, ebpf.CollectionOptions{MapReplacements: coll.Maps})
			if err != nil {
				return loadError(p, err)
			}
			p.prog = c.DetachProgram(p.name)
			c.Close()
		}
	}
	if l.req.MapOwnerID != 0 && shared == 0 {
		return fmt.Errorf("map owner %d: has none of the maps of %s: %w", l.req.MapOwnerID, l.objectNames(), ErrInvalid)
	}
	return nil
}

func loadError(p *loadingProgram, err error) error {
	var ve *ebpf.VerifierError
	switch {
	case errors.As(err, &ve):
		return newVerifierError(p.name, ve)
	case p.spec.Type == ebpf.Tracing && p.spec.AttachTo != "" && !kernelHasFunction(p.spec.AttachTo):
		return fmt.Errorf("program %s: kernel function %s: not in the kernel's BTF: %w", p.name, p.spec.AttachTo, ErrNotFound)
	}
	return fmt.Errorf("program %s: load: %w", p.name, kernelError(err))
}

// kernelHasFunction reports whether the kernel's BTF describes the function
// name; true when the BTF cannot be read, so as not to misreport.
func kernelHasFunction(name string) bool {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return true
	}
	var fn *btf.Func
	return spec.TypeByName(name, &fn) == nil
}

// constantData reports whether a map holds read-only globals, which stay
// each program's own even with a map owner: they are its load-time
// configuration.
func constantData(name string) bool {
	return strings.HasPrefix(name, ".rodata") || name == ".kconfig"
}

// openOwnerMaps opens the pinned maps of the request's map owner.
func (m *Manager) openOwnerMaps(l *loading) error {
	id := l.req.MapOwnerID
	if id == 0 {
		return nil
	}
	owner, err := m.store.get(id)
	if errors.Is(err, ErrNotFound) || (err == nil && owner.State != stateLoaded) {
		return fmt.Errorf("map owner %d: program %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("map owner %d: %w", id, err)
	}
	l.ownerMaps = make(map[string]*ebpf.Map, len(owner.Maps))
	for _, mr := range owner.Maps {
		mp, err := ebpf.LoadPinnedMap(m.mapPin(id, mr.Name), nil)
		if err != nil {
			return fmt.Errorf("map owner %d: map %s: %w", id, mr.Name, kernelError(err))
		}
		l.ownerMaps[mr.Name] = mp
	}
	return nil
}

// checkHooks refuses to put a second program on a hook that takes one.
func checkHooks(l *loading, hooks map[string]*hookState) error {
	taken := map[string]string{}
	for _, p := range l.programs {
		if !p.target.exclusive() {
			continue
		}
		key := p.target.hook()
		if ids := hooks[key].ids(); len(ids) > 0 {
			return fmt.Errorf("program %s: %s already has bpfd program %d; it takes one %s program until dispatchers land: %w",
				p.name, describeTarget(p), ids[0], p.kind, ErrConflict)
		}
		if other, ok := taken[key]; ok {
			return fmt.Errorf("program %s: %s is also requested for program %s; it takes one %s program: %w",
				p.name, describeTarget(p), other, p.kind, ErrConflict)
		}
		taken[key] = p.name
	}
	return nil
}

func describeTarget(p *loadingProgram) string {
	if t, ok := p.target.(*xdpTarget); ok {
		return t.net.String()
	}
	return "hook " + p.target.hook()
}

// begin writes a "loading" record for every program, giving each its id.
func (m *Manager) begin(l *loading) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	recs := make([]*record, len(l.programs))
	for i, p := range l.programs {
		p.rec = &record{
			State:      stateLoading,
			Name:       p.name,
			Kind:       p.kind,
			Object:     p.object.name,
			Attach:     p.attach,
			Hook:       p.target.hook(),
			Metadata:   l.req.Metadata,
			Globals:    l.req.Globals,
			MapOwnerID: l.req.MapOwnerID,
			Provenance: l.prov,
			LoadedBy:   l.req.Requester,
			LoadedAt:   now,
		}
		recs[i] = p.rec
	}
	byRecord := make(map[*record]*loadingProgram, len(l.programs))
	for _, p := range l.programs {
		byRecord[p.rec] = p
	}
	return m.store.create(recs, func(r *record) {
		p := byRecord[r]
		if first := p.object.programs[0]; first != p && r.MapOwnerID == 0 {
			r.MapOwnerID = first.rec.ID // programs of one object share its maps
		}
		if t, ok := p.target.(*tcTarget); ok {
			r.TCFilter = t.filter(r.ID)
		}
	})
}

// attachAndPin attaches every program and pins it, its link and its maps.
func (m *Manager) attachAndPin(l *loading) error {
	for _, p := range l.programs {
		id := p.rec.ID
		if err := os.MkdirAll(m.mapsDir(id), 0o700); err != nil {
			return fmt.Errorf("program %s: pin directory: %w", p.name, err)
		}
		att, err := p.target.attach(p.prog, id)
		if err != nil {
			return fmt.Errorf("program %s: %w", p.name, err)
		}
		p.att = att
		step("load:attached")

		if err := p.prog.Pin(m.programPin(id)); err != nil {
			return fmt.Errorf("program %s: pin: %w", p.name, err)
		}
		if att.link != nil {
			if err := att.link.Pin(m.linkPin(id)); err != nil {
				return fmt.Errorf("program %s: pin link: %w", p.name, kernelError(err))
			}
			info, err := att.link.Info()
			if err != nil {
				return fmt.Errorf("program %s: link info: %w", p.name, err)
			}
			p.rec.LinkID = uint32(info.ID)
		}
		maps, err := m.pinMaps(id, p.object.maps.Maps)
		if err != nil {
			return fmt.Errorf("program %s: %w", p.name, err)
		}
		p.rec.Maps = maps
		info, err := p.prog.Info()
		if err != nil {
			return fmt.Errorf("program %s: info: %w", p.name, err)
		}
		pid, _ := info.ID()
		p.rec.ProgramID = uint32(pid)
		step("load:pinned")
	}
	return nil
}

// pinMaps pins every map under the program's maps directory. A map may be
// pinned by several programs: each pin is made from its own clone.
func (m *Manager) pinMaps(id ID, maps map[string]*ebpf.Map) ([]mapRecord, error) {
	recs := make([]mapRecord, 0, len(maps))
	for name, mp := range maps {
		c, err := mp.Clone()
		if err != nil {
			return nil, fmt.Errorf("map %s: %w", name, err)
		}
		err = c.Pin(m.mapPin(id, name))
		c.Close()
		if err != nil {
			return nil, fmt.Errorf("map %s: pin: %w", name, err)
		}
		info, err := mp.Info()
		if err != nil {
			return nil, fmt.Errorf("map %s: info: %w", name, err)
		}
		mid, _ := info.ID()
		recs = append(recs, mapRecord{Name: name, ID: uint32(mid)})
	}
	sortMaps(recs)
	return recs, nil
}

// commit marks the programs loaded.
func (m *Manager) commit(l *loading) error {
	recs := make([]*record, len(l.programs))
	for i, p := range l.programs {
		p.rec.State = stateLoaded
		recs[i] = p.rec
	}
	err := m.store.put(recs...)
	if err != nil {
		for _, r := range recs {
			r.State = stateLoading
		}
	}
	return err
}

// rollback undoes a failed load after begin: it detaches what was attached,
// removes the pins and deletes the records. What it cannot undo stays
// recorded as "loading", for the next Open to finish.
func (m *Manager) rollback(l *loading) {
	var ids []ID
	for i := len(l.programs) - 1; i >= 0; i-- {
		p := l.programs[i]
		if p.rec == nil || p.rec.ID == 0 {
			continue
		}
		ids = append(ids, p.rec.ID)
		if err := p.att.detach(); err != nil {
			m.log.Error("roll back load: detach", "program_id", p.rec.ID, "program", p.name, "error", err)
		}
		p.att = nil
		if err := removePins(m.programDir(p.rec.ID)); err != nil {
			m.log.Error("roll back load", "program_id", p.rec.ID, "program", p.name, "error", err)
		}
	}
	if err := m.store.remove(ids...); err != nil {
		m.log.Error("roll back load: records stay until the store takes writes again", "program_ids", ids, "error", err)
		m.pendingMu.Lock()
		m.pending = append(m.pending, ids...)
		m.pendingMu.Unlock()
	}
}

// retryRemovals deletes the records of rolled-back loads whose deletion
// failed (a full disk); Open removes them too, should bpfd stop first.
func (m *Manager) retryRemovals() {
	m.pendingMu.Lock()
	defer m.pendingMu.Unlock()
	if len(m.pending) == 0 {
		return
	}
	if err := m.store.remove(m.pending...); err != nil {
		return
	}
	m.log.Info("deleted records of rolled-back loads", "program_ids", m.pending)
	m.pending = nil
}
