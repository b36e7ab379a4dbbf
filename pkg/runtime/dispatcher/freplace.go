package dispatcher

import (
	"bytes"
	_ "embed"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// The freplace dispatchers, built from bytecode/dispatcher by `make
// bytecode`, each also in a variant that accounts its members' runs.
var (
	//go:embed bpf/xdp_dispatcher.bpf.o
	xdpDispatcherObject []byte
	//go:embed bpf/tc_dispatcher.bpf.o
	tcDispatcherObject []byte
	//go:embed bpf/xdp_dispatcher_stats.bpf.o
	xdpDispatcherStatsObject []byte
	//go:embed bpf/tc_dispatcher_stats.bpf.o
	tcDispatcherStatsObject []byte
)

// freplaceObject is a freplace dispatcher: its object and its program's name.
type freplaceObject struct {
	object  []byte
	program string
}

// freplaceKey picks a dispatcher: its kind and whether it accounts.
type freplaceKey struct {
	kind       progtype.Kind
	accounting bool
}

var freplaceObjects = map[freplaceKey]freplaceObject{
	{progtype.XDP, false}: {xdpDispatcherObject, "xdp_dispatcher"},
	{progtype.TC, false}:  {tcDispatcherObject, "tc_dispatcher"},
	{progtype.XDP, true}:  {xdpDispatcherStatsObject, "xdp_dispatcher_stats"},
	{progtype.TC, true}:   {tcDispatcherStatsObject, "tc_dispatcher_stats"},
}

// countersMap names the accounting dispatchers' counters.
const countersMap = "chain_stats"

// freplaceSpecs parses the embedded dispatchers once.
var freplaceSpecs = sync.OnceValues(func() (map[freplaceKey]*ebpf.CollectionSpec, error) {
	specs := map[freplaceKey]*ebpf.CollectionSpec{}
	for k, o := range freplaceObjects {
		spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(o.object))
		if err != nil {
			return nil, fmt.Errorf("%s dispatcher object: %w", k.kind, err)
		}
		if spec.Programs[o.program] == nil || spec.Variables["conf"] == nil || k.accounting && spec.Maps[countersMap] == nil {
			return nil, fmt.Errorf("%s dispatcher object: no program %s, no conf or no counters", k.kind, o.program)
		}
		specs[k] = spec
	}
	return specs, nil
})

// dispatcherConfig is conf in bytecode/dispatcher/dispatcher.h: libxdp's
// struct xdp_dispatcher_config, version 2.
type dispatcherConfig struct {
	Magic      uint8
	Version    uint8
	Enabled    uint8
	Frags      uint8
	ProceedOn  [MaxFreplacePrograms]uint32
	Priorities [MaxFreplacePrograms]uint32
	Flags      [MaxFreplacePrograms]uint32
}

const (
	configMagic   = 236
	configVersion = 2
)

// stub returns the name of slot i's stub function.
func stub(i int) string { return fmt.Sprintf("prog%d", i) }

// buildFreplace loads a dispatcher configured for members and attaches each
// member's extension program to its slot, loading those extensions lacks.
func (c *Chain) buildFreplace(members []Member, extensions map[uint64]*ebpf.Program, accounting bool) error {
	flags, err := commonFlags(members)
	if err != nil {
		return err
	}
	if c.prog, c.counters, err = loadFreplaceDispatcher(freplaceKey{c.kind, accounting}, members, flags); err != nil {
		return err
	}
	dispatcherID, err := programID(c.prog)
	if err != nil {
		return err
	}
	for i := range members {
		m := &members[i]
		ext := extensions[m.ID]
		if ext == nil {
			if ext, err = loadExtension(m, c.prog, i); err != nil {
				return err
			}
			c.loaded[m.ID] = ext
		}
		l, err := link.AttachFreplace(c.prog, stub(i), ext)
		if err != nil {
			return memberError(m, "attach to slot %d of dispatcher %d: %w", i, dispatcherID, err)
		}
		c.exts = append(c.exts, ext)
		c.links = append(c.links, l)
		id, err := programID(ext)
		if err != nil {
			return memberError(m, "%w", err)
		}
		c.slots = append(c.slots, Slot{Position: i, ID: m.ID, Name: m.Name, Priority: m.Priority, ProceedOn: m.ProceedOn, ProgramID: id})
	}
	return nil
}

// loadFreplaceDispatcher loads the dispatcher key names with its conf set
// for members, and returns it with its counters when it accounts.
func loadFreplaceDispatcher(key freplaceKey, members []Member, flags uint32) (_ *ebpf.Program, counters *ebpf.Map, _ error) {
	k := key.kind
	specs, err := freplaceSpecs()
	if err != nil {
		return nil, nil, err
	}
	spec := specs[key].Copy()
	conf := dispatcherConfig{Magic: configMagic, Version: configVersion, Enabled: uint8(len(members))}
	if flags&unix.BPF_F_XDP_HAS_FRAGS != 0 {
		conf.Frags = 1
	}
	for i, m := range members {
		conf.ProceedOn[i] = uint32(m.ProceedOn)
		conf.Priorities[i] = uint32(m.Priority)
		conf.Flags[i] = flags
	}
	if err := spec.Variables["conf"].Set(conf); err != nil {
		return nil, nil, fmt.Errorf("%s dispatcher: set conf: %w", k, err)
	}
	maps, err := ebpf.NewCollection(&ebpf.CollectionSpec{Maps: spec.Maps, Variables: spec.Variables, Types: spec.Types, ByteOrder: spec.ByteOrder})
	if err != nil {
		return nil, nil, fmt.Errorf("%s dispatcher: create maps: %w", k, err)
	}
	defer maps.Close()

	prog := spec.Programs[freplaceObjects[key].program]
	prog.Flags = flags
	for i := range prog.Instructions {
		ins := &prog.Instructions[i]
		if ins.IsLoadFromMap() && ins.Reference() != "" {
			if err := ins.AssociateMap(maps.Maps[ins.Reference()]); err != nil {
				return nil, nil, fmt.Errorf("%s dispatcher: map %s: %w", k, ins.Reference(), err)
			}
		}
	}
	var p *ebpf.Program
	if k == progtype.XDP {
		// libxdp recognises its dispatcher by a variable of the object's
		// BTF that no instruction refers to.
		p, err = loadWithDatasecs(prog, spec.Types)
	} else {
		p, err = ebpf.NewProgram(prog)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s dispatcher: load: %w", k, err)
	}
	if key.accounting {
		counters = maps.DetachMap(countersMap)
	}
	return p, counters, nil
}

// loadExtension loads m as an extension program replacing slot's stub of
// target.
func loadExtension(m *Member, target *ebpf.Program, slot int) (*ebpf.Program, error) {
	spec := m.Program.Copy()
	spec.Type = ebpf.Extension
	spec.AttachType = ebpf.AttachNone
	spec.AttachTarget = target
	spec.AttachTo = stub(slot)
	if err := bindMaps(m, spec); err != nil {
		return nil, err
	}
	p, err := ebpf.NewProgram(spec)
	if err != nil {
		return nil, memberError(m, "load as extension program: %w", err)
	}
	return p, nil
}
