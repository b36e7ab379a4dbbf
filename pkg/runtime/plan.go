package runtime

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// loading is one Load in progress: the request checked against the
// bytecode, and the kernel objects made for it so far. close releases every
// descriptor it holds; pins and attachments that were committed stay.
type loading struct {
	req      *LoadRequest
	prov     Provenance
	objects  []*loadingObject
	programs []*loadingProgram // in request order
	// chains are the XDP and TC hooks the load adds programs to, in the
	// order of the request.
	chains []*loadingChain
	// ownerMaps are the map owner's pinned maps, by name.
	ownerMaps map[string]*ebpf.Map
}

// loadingObject is an ELF object with at least one requested program.
type loadingObject struct {
	name string
	elf  []byte
	spec *ebpf.CollectionSpec
	// maps holds the object's maps once created; its programs share them.
	maps *ebpf.Collection
	// programs are the requested programs of this object, in request order.
	programs []*loadingProgram
}

// loadingProgram is one requested program.
type loadingProgram struct {
	name   string
	kind   progtype.Kind
	attach AttachSpec // completed with defaults
	object *loadingObject
	spec   *ebpf.ProgramSpec
	target target
	// prog is the loaded program; nil for a program that joins a chain,
	// which its hook's dispatcher loads.
	prog *ebpf.Program
	att  *attachment
	rec  *record
}

// loadingChain is an XDP or TC hook the load adds programs to.
type loadingChain struct {
	target chainTarget
	hs     *hookState
	// before are the hook's programs before the load, in run order.
	before []*member
	// programs are the load's programs for the hook.
	programs []*loadingProgram
	// applied says whether the hook runs the chain with programs.
	applied bool
	// changed are the records of programs in before that the new chain
	// changed (a lone program that ran on its own and now runs in a
	// dispatcher); commit writes them with the load's records.
	changed []*record
}

// chain returns the load's loadingChain of t's hook, whose state is hs.
func (l *loading) chain(t chainTarget, hs *hookState) *loadingChain {
	for _, c := range l.chains {
		if c.target.hook() == t.hook() {
			return c
		}
	}
	c := &loadingChain{target: t, hs: hs, before: hs.snapshot()}
	l.chains = append(l.chains, c)
	return c
}

// names lists the names of c's programs.
func (c *loadingChain) names() string {
	names := make([]string, len(c.programs))
	for i, p := range c.programs {
		names[i] = p.name
	}
	return strings.Join(names, ", ")
}

// plan checks the request against the bytecode without touching the
// kernel: the programs exist, their kinds fit and are allowed by the policy
// rule, attach specs fit the programs, global overrides match declared
// variables. It returns the load, with private copies of the specs adjusted
// for loading.
func plan(req *LoadRequest, bc *Bytecode) (*loading, error) {
	if len(bc.Objects) == 0 {
		return nil, fmt.Errorf("bytecode %s: no objects for this platform: %w", bc.Provenance.Reference, ErrInvalid)
	}
	specs := make([]*ebpf.CollectionSpec, len(bc.Objects))
	for i, o := range bc.Objects {
		spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(o.ELF))
		if err != nil {
			return nil, fmt.Errorf("object %s: %w", o.Name, classify(err, ErrInvalid))
		}
		specs[i] = spec
	}

	l := &loading{req: req, prov: bc.Provenance}
	byIndex := map[int]*loadingObject{}
	for _, pr := range req.Programs {
		i, err := findProgram(pr.Name, bc.Objects, specs)
		if err != nil {
			return nil, err
		}
		obj := byIndex[i]
		if obj == nil {
			obj = &loadingObject{name: bc.Objects[i].Name, elf: bc.Objects[i].ELF, spec: specs[i]}
			byIndex[i] = obj
			l.objects = append(l.objects, obj)
		}
		p := &loadingProgram{name: pr.Name, kind: pr.Kind, object: obj, spec: specs[i].Programs[pr.Name]}
		if err := p.check(pr, bc.Provenance); err != nil {
			return nil, fmt.Errorf("program %s: %w", pr.Name, err)
		}
		obj.programs = append(obj.programs, p)
		l.programs = append(l.programs, p)
	}

	if err := l.applyGlobals(); err != nil {
		return nil, err
	}
	// Load only the requested programs.
	for _, obj := range l.objects {
		keep := make(map[string]*ebpf.ProgramSpec, len(obj.programs))
		for _, p := range obj.programs {
			keep[p.name] = p.spec
		}
		obj.spec.Programs = keep
	}
	return l, nil
}

// findProgram returns the index of the one object that has the program.
func findProgram(name string, objects []Object, specs []*ebpf.CollectionSpec) (int, error) {
	found := -1
	var all []string
	for i, spec := range specs {
		if _, ok := spec.Programs[name]; ok {
			if found >= 0 {
				return 0, fmt.Errorf("program %s: in both %s and %s: %w", name, objects[found].Name, objects[i].Name, ErrInvalid)
			}
			found = i
		}
		for n := range spec.Programs {
			all = append(all, n)
		}
	}
	if found < 0 {
		sort.Strings(all)
		names := make([]string, len(objects))
		for i, o := range objects {
			names[i] = o.Name
		}
		return 0, fmt.Errorf("program %s: not in %s (programs: %s): %w", name, strings.Join(names, ", "), strings.Join(all, ", "), ErrProgramNotFound)
	}
	return found, nil
}

// check checks the requested kind and attach spec against the program and
// the policy rule, and completes the attach spec.
func (p *loadingProgram) check(pr ProgramRequest, prov Provenance) error {
	kinds := progtype.Of(p.spec)
	if len(kinds) == 0 {
		return fmt.Errorf("a %s program (section %q) is not a kind bpfd attaches: %w", p.spec.Type, p.spec.SectionName, ErrInvalid)
	}
	if !slices.Contains(kinds, pr.Kind) {
		return fmt.Errorf("is of kind %s (section %s), not %s: %w", kindList(kinds), p.spec.SectionName, pr.Kind, ErrInvalid)
	}
	if prov.AllowedKinds != nil && !slices.Contains(prov.AllowedKinds, pr.Kind) {
		return fmt.Errorf("kind %s not allowed by policy rule %q (allows %s): %w", pr.Kind, prov.Rule, kindList(prov.AllowedKinds), ErrPermission)
	}
	attach, err := pr.Attach.complete(p.spec)
	if err != nil {
		return err
	}
	p.attach = attach
	return nil
}

func kindList(kinds []progtype.Kind) string {
	if len(kinds) == 0 {
		return "none"
	}
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, " or ")
}

// applyGlobals sets the requested global variables in every loaded object
// that declares them.
func (l *loading) applyGlobals() error {
	names := make([]string, 0, len(l.req.Globals))
	for n := range l.req.Globals {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		value := l.req.Globals[name]
		found := false
		for _, obj := range l.objects {
			v, ok := obj.spec.Variables[name]
			if !ok {
				continue
			}
			found = true
			if size := v.Size(); uint32(len(value)) != size {
				return fmt.Errorf("global data %s: %d bytes given, %s declares %d: %w", name, len(value), obj.name, size, ErrInvalid)
			}
			if err := v.Set(value); err != nil {
				return fmt.Errorf("global data %s: %w", name, classify(err, ErrInvalid))
			}
		}
		if !found {
			return fmt.Errorf("global data %s: not declared by %s (declared: %s): %w", name, l.objectNames(), l.declaredGlobals(), ErrInvalid)
		}
	}
	return nil
}

func (l *loading) objectNames() string {
	names := make([]string, len(l.objects))
	for i, o := range l.objects {
		names[i] = o.name
	}
	return strings.Join(names, ", ")
}

func (l *loading) declaredGlobals() string {
	var names []string
	for _, o := range l.objects {
		for n := range o.spec.Variables {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	sort.Strings(names)
	return strings.Join(slices.Compact(names), ", ")
}

// hooks returns the hooks the load attaches to, and for tcx programs the tc
// hooks whose chains they are placed before.
func (l *loading) hooks() []string {
	var keys []string
	for _, p := range l.programs {
		keys = append(keys, p.target.hook())
		if t, ok := p.target.(*tcxTarget); ok {
			keys = append(keys, t.tcHook())
		}
	}
	return keys
}

// close releases every descriptor the load holds. Pins stay.
func (l *loading) close() {
	for _, p := range l.programs {
		p.att.release()
		p.att = nil
		if p.prog != nil {
			p.prog.Close()
			p.prog = nil
		}
	}
	for _, o := range l.objects {
		if o.maps != nil {
			o.maps.Close()
			o.maps = nil
		}
	}
	for _, m := range l.ownerMaps {
		m.Close()
	}
	l.ownerMaps = nil
}
