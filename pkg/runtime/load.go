package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// Load checks the request against bc, loads the requested programs of its
// objects with the kernel's verifier, attaches each to its hook, pins
// program, link and maps under <bpffs>/<id>/ and records them with bc's
// provenance and the request's owner. It returns the programs in the order
// of the request. bc is bytecode the caller has already admitted: Load
// trusts it, and enforces only its Provenance.AllowedKinds.
//
// Load is all or nothing: when it fails, nothing it did stays loaded,
// attached, pinned or recorded, and it holds no descriptors. Errors wrap
// ErrInvalid, ErrProgramNotFound, ErrHookNotFound, ErrPermission,
// ErrConflict, ErrUnsupported or ErrVerifier (a *VerifierError with the
// log's tail) where one applies.
//
// Load is crash-safe: the records are written (state "loading") before
// anything is attached or pinned, and marked loaded only once everything
// is pinned, so Open after a crash at any point finds and removes what an
// interrupted Load left.
func (m *Manager) Load(ctx context.Context, req LoadRequest, bc *Bytecode) ([]Program, error) {
	if err := m.enter(); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()

	m.retryRemovals()
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if bc == nil {
		return nil, fmt.Errorf("bytecode: missing: %w", ErrInvalid)
	}
	l, err := plan(&req, bc)
	if err != nil {
		return nil, err
	}
	defer l.close()

	for _, p := range l.programs {
		if req.Tenant != nil {
			if err := req.Tenant.confine(p.kind, p.attach); err != nil {
				return nil, fmt.Errorf("program %s: %w", p.name, err)
			}
		}
		if p.target, err = p.attach.resolve(p.kind); err != nil {
			return nil, fmt.Errorf("program %s: %w", p.name, err)
		}
	}
	if err := m.loadKernelObjects(l); err != nil {
		return nil, err
	}

	hooks, unlock := m.hooks.lock(l.hooks()...)
	defer unlock()
	if err := m.checkHooks(l, hooks); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.begin(l); err != nil {
		return nil, fmt.Errorf("record load: %w", err)
	}
	step("load:recorded")
	if err := m.attachAndPin(l, hooks); err != nil {
		m.rollback(l)
		return nil, err
	}
	if err := m.commit(l); err != nil {
		m.rollback(l)
		return nil, fmt.Errorf("record load: %w", err)
	}
	step("load:committed")
	for _, p := range l.programs {
		if _, ok := p.target.(chainTarget); !ok {
			hooks[p.rec.Hook].add(&member{rec: p.rec})
		}
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
			if _, ok := p.target.(chainTarget); ok {
				continue // the dispatcher loads it into the hook's chain
			}
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
	case p.spec.Type == ebpf.Tracing && p.spec.AttachType == ebpf.AttachTraceRawTp && p.spec.AttachTo != "" && !kernelHasTracepoint(p.spec.AttachTo):
		return fmt.Errorf("program %s: tracepoint %s: not in the kernel's BTF: %w", p.name, p.spec.AttachTo, ErrHookNotFound)
	case p.spec.Type == ebpf.Tracing && p.spec.AttachType != ebpf.AttachTraceRawTp && p.spec.AttachTo != "" && !kernelHasFunction(p.spec.AttachTo):
		return fmt.Errorf("program %s: kernel function %s: not in the kernel's BTF: %w", p.name, p.spec.AttachTo, ErrHookNotFound)
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

// kernelHasTracepoint reports whether the kernel's BTF describes the
// tracepoint name (as the typedef btf_trace_<name> a BTF-enabled tracepoint
// program binds to); true when the BTF cannot be read.
func kernelHasTracepoint(name string) bool {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return true
	}
	var td *btf.Typedef
	return spec.TypeByName("btf_trace_"+name, &td) == nil
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
		return fmt.Errorf("map owner %d: program %w", id, ErrProgramNotFound)
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

// checkHooks groups the programs that join the chain of an XDP or TC hook
// by hook, and refuses a chain longer than the dispatcher mode allows or
// one whose programs would disagree on the XDP mode. The caller holds the
// hooks.
func (m *Manager) checkHooks(l *loading, hooks map[string]*hookState) error {
	for _, p := range l.programs {
		t, ok := p.target.(chainTarget)
		if !ok {
			continue
		}
		c := l.chain(t, hooks[t.hook()])
		c.programs = append(c.programs, p)
		if n, most := len(c.before)+len(c.programs), m.mode.MaxPrograms(); n > most {
			return fmt.Errorf("program %s: %s would run %d %s programs, %s mode takes at most %d on one hook: %w",
				p.name, t, n, p.kind, m.mode, most, ErrConflict)
		}
		first := c.programs[0].attach
		if len(c.before) > 0 {
			first = c.before[0].rec.Attach
		}
		if a, ok := p.attach.(XDPAttach); ok && a.Mode != first.(XDPAttach).Mode {
			return fmt.Errorf("program %s: %s runs its XDP programs in %s mode, not %s: %w",
				p.name, t, xdpModeName(first.(XDPAttach).Mode), xdpModeName(a.Mode), ErrConflict)
		}
	}
	return nil
}

func xdpModeName(m XDPMode) string {
	if m == XDPModeDefault {
		return "the default"
	}
	return string(m)
}

// begin writes a "loading" record for every program, giving each its id,
// with the ELF objects of the programs that join a chain.
func (m *Manager) begin(l *loading) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	owner := l.req.Owner
	owner.UID = l.req.Requester.UID
	recs := make([]*record, len(l.programs))
	objects := map[string][]byte{}
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
			Owner:      owner,
			LoadedAt:   now,
		}
		if t, ok := p.target.(chainTarget); ok {
			sum := sha256.Sum256(p.object.elf)
			p.rec.Chain = &chainRecord{Mode: m.mode, Ifindex: t.chainHook().Ifindex, Object: hex.EncodeToString(sum[:])}
			objects[p.rec.Chain.Object] = p.object.elf
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
	}, objects)
}

// attachAndPin pins every program's maps, attaches the programs that take
// a link of their own and pins them and their links, then rebuilds the
// chain of each XDP and TC hook with its new programs and, in freplace
// mode, pins their extension programs.
func (m *Manager) attachAndPin(l *loading, hooks map[string]*hookState) error {
	for _, p := range l.programs {
		id := p.rec.ID
		if err := os.MkdirAll(m.mapsDir(id), 0o700); err != nil {
			return fmt.Errorf("program %s: pin directory: %w", p.name, err)
		}
		t, ok := p.target.(linkTarget)
		if !ok {
			// Its maps are pinned before its chain runs it.
			maps, err := m.pinMaps(id, p.object.maps.Maps)
			if err != nil {
				return fmt.Errorf("program %s: %w", p.name, err)
			}
			p.rec.Maps = maps
			continue
		}
		if tcx, ok := t.(*tcxTarget); ok {
			tcx.anchor = tcxAnchor(l, p, hooks[tcx.hook()].snapshot(), hooks[tcx.tcHook()].chainState())
		}
		att, err := t.attach(p.prog)
		if err != nil {
			return fmt.Errorf("program %s: %w", p.name, err)
		}
		p.att = att
		step("load:attached")

		if err := p.prog.Pin(m.programPin(id)); err != nil {
			return fmt.Errorf("program %s: pin: %w", p.name, err)
		}
		if err := att.link.Pin(m.linkPin(id)); err != nil {
			return fmt.Errorf("program %s: pin link: %w", p.name, kernelError(err))
		}
		info, err := att.link.Info()
		if err != nil {
			return fmt.Errorf("program %s: link info: %w", p.name, err)
		}
		p.rec.LinkID = uint32(info.ID)
		maps, err := m.pinMaps(id, p.object.maps.Maps)
		if err != nil {
			return fmt.Errorf("program %s: %w", p.name, err)
		}
		p.rec.Maps = maps
		pinfo, err := p.prog.Info()
		if err != nil {
			return fmt.Errorf("program %s: info: %w", p.name, err)
		}
		pid, _ := pinfo.ID()
		p.rec.ProgramID = uint32(pid)
		// Its facts, from the info at hand: the response describes the
		// program with them, and a restart reads them from the store.
		facts := factsFromInfo(pinfo)
		m.kernel.learn(pid, facts)
		p.rec.Kernel = facts.record(pid)
		step("load:pinned")
	}
	for _, c := range l.chains {
		if err := m.joinChain(c); err != nil {
			return err
		}
		step("load:chained")
		changed, err := m.syncMembers(c.hs)
		if err != nil {
			return fmt.Errorf("hook %s: %w", c.target, err)
		}
		for _, r := range changed {
			if slices.ContainsFunc(c.before, func(mb *member) bool { return mb.rec == r }) {
				c.changed = append(c.changed, r)
			}
		}
		step("load:pinned")
	}
	return nil
}

// joinChain rebuilds the chain of c's hook with c's programs added in their
// places.
func (m *Manager) joinChain(c *loadingChain) error {
	ms := slices.Clone(c.before)
	fresh := make(map[ID]map[string]*ebpf.Map, len(c.programs))
	for _, p := range c.programs {
		ms = append(ms, &member{rec: p.rec, program: p.spec})
		fresh[p.rec.ID] = p.object.maps.Maps
	}
	sortMembers(ms)
	err := m.applyChain(c.target.hook(), c.hs, c.target.chainHook(), ms, fresh)
	if err == nil {
		c.applied = true
		return nil
	}
	var ve *VerifierError
	if errors.As(err, &ve) {
		return err // it names the program
	}
	if t, ok := c.target.(*xdpTarget); ok && errors.Is(err, dispatcher.ErrConflict) {
		return fmt.Errorf("program %s: %s already has an XDP program%s, not attached by bpfd: %w",
			c.names(), t.net, t.attachedID(), ErrConflict)
	}
	return fmt.Errorf("program %s: attach %s to %s: %w", c.names(), c.target.chainHook().Kind, c.target, err)
}

// tcxAnchor returns where p goes on its TCX hook among bpfd's programs there,
// those of the hook (in run order) and those l attached before p: before
// the first that runs after it, else after the last. With none, it goes
// before the chain of bpfd's tc programs in the same direction (tc runs
// after TCX programs on kernels without a tc dispatcher too), else (nil) at
// the end of the hook.
func tcxAnchor(l *loading, p *loadingProgram, others []*member, tcChain dispatcher.State) link.Anchor {
	for _, q := range l.programs {
		if q == p {
			break
		}
		if q.rec.Hook == p.rec.Hook && q.rec.LinkID != 0 {
			others = append(others, &member{rec: q.rec})
		}
	}
	sortMembers(others)
	mine := (&member{rec: p.rec}).rank()
	for _, o := range others {
		if mine.Compare(o.rank()) < 0 {
			return link.BeforeLinkByID(link.ID(o.rec.LinkID))
		}
	}
	if n := len(others); n > 0 {
		return link.AfterLinkByID(link.ID(others[n-1].rec.LinkID))
	}
	if tcChain.ProgramID != 0 {
		return link.BeforeProgramByID(tcChain.ProgramID)
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

// commit marks the programs loaded, and records how the programs already
// on their hooks now run.
func (m *Manager) commit(l *loading) error {
	recs := make([]*record, len(l.programs))
	for i, p := range l.programs {
		p.rec.State = stateLoaded
		recs[i] = p.rec
	}
	for _, c := range l.chains {
		recs = append(recs, c.changed...)
	}
	err := m.store.put(recs...)
	if err != nil {
		for _, r := range recs {
			r.State = stateLoading
		}
	}
	return err
}

// rollback undoes a failed load after begin: it makes each XDP and TC hook
// run the chain it ran before, detaches what was attached, removes the pins
// and deletes the records. What it cannot undo stays recorded as "loading",
// for the next Open to finish.
func (m *Manager) rollback(l *loading) {
	var ids []ID
	stuck := map[*loadingProgram]bool{}
	for i := len(l.chains) - 1; i >= 0; i-- {
		c := l.chains[i]
		if !c.applied {
			m.closeDispatcher(c.target.hook(), c.hs)
			continue
		}
		if err := m.applyChain(c.target.hook(), c.hs, c.target.chainHook(), c.before, nil); err != nil {
			m.log.Error("roll back load: the hook keeps running the new programs until bpfd restarts",
				"hook", c.target.hook(), "programs", c.names(), "error", err)
			for _, p := range c.programs {
				stuck[p] = true
			}
			continue
		}
		m.recordMembers(c.target.hook(), c.hs)
	}
	for i := len(l.programs) - 1; i >= 0; i-- {
		p := l.programs[i]
		if p.rec == nil || p.rec.ID == 0 {
			continue
		}
		if err := p.att.detach(); err != nil {
			m.log.Error("roll back load: detach", "program_id", p.rec.ID, "program", p.name, "error", err)
		}
		p.att = nil
		if err := removePins(m.programDir(p.rec.ID)); err != nil {
			m.log.Error("roll back load", "program_id", p.rec.ID, "program", p.name, "error", err)
		}
		if !stuck[p] {
			ids = append(ids, p.rec.ID)
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
