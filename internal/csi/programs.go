package csi

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Programs is what the driver needs of bpfd: the programs loaded on this
// node, each with the config its owner names and the namespaces that owner
// admits. The owner is recorded by bpfd from a load request only root or an
// administrator may make (the node's agent), so a client of bpfd's API
// cannot claim a config's name or admit namespaces for it.
//
// LoadedPrograms returns every program bpfd manages on this node; an error
// means they could not be read (the driver answers Unavailable).
type Programs interface {
	LoadedPrograms(ctx context.Context) ([]Program, error)
}

// Program is a program bpfd loaded.
type Program struct {
	// ID is bpfd's id of the program.
	ID uint64
	// Config is the config its owner names: a cluster-scoped
	// BpfProgramConfig when Namespace is empty, else the tenant's
	// BpfTenantProgramConfig of that namespace; empty for programs loaded
	// for no config.
	Config string
	// Namespace is the tenant namespace its owner names; empty for a
	// cluster-scoped config's program.
	Namespace string
	// ReaderNamespaces are the namespaces whose pods its owner lets mount
	// the config's maps.
	ReaderNamespaces []string
	// MapOwnerID is the program whose maps it uses (0: its own).
	MapOwnerID uint64
	// Maps are the maps the program uses, pinned in bpfd's bpffs.
	Maps []Map
}

// Map is a map of a program, as bpfd pinned it.
type Map struct {
	// Name is the map's name in its object (".bss" for globals).
	Name string
	// ID is the kernel's map id.
	ID uint32
	// PinPath is bpfd's pin of the map.
	PinPath string
}

// configMaps is what the driver may give of one config: its own maps by
// name and the namespaces admitted to them.
type configMaps struct {
	config     string
	namespace  string // the tenant's; empty for a cluster-scoped config
	maps       map[string]Map
	namespaces []string
}

// String names the config in messages: "config NAME" for a cluster-scoped
// config, "tenant config NAME of namespace NS" for a tenant's.
func (c *configMaps) String() string { return configName(c.config, c.namespace) }

func configName(config, namespace string) string {
	if namespace == "" {
		return "config " + config
	}
	return "tenant config " + config + " of namespace " + namespace
}

// admits reports whether pods of namespace may mount the config's maps.
func (c *configMaps) admits(namespace string) bool { return slices.Contains(c.namespaces, namespace) }

// names returns the names of the config's maps, sorted.
func (c *configMaps) names() []string {
	names := make([]string, 0, len(c.maps))
	for n := range c.maps {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// mapsOf returns the maps of config's programs among progs that the config
// owns, and the namespaces every one of its programs admits. The config is
// the cluster-scoped one of that name when namespace is empty, else the
// tenant config of that name in namespace: a program belongs to it only when
// its owner names both, so a tenant's config never counts as a cluster
// config of the same name or another tenant's. A tenant config's maps are
// admitted to its own namespace only, whatever its programs' owners say. A
// map a
// program uses belongs to the program that created it: the program itself
// when it has no map owner or its map owner has no map of that id,
// otherwise (recursively) its map owner's. Maps created by another config's
// programs, or whose creator bpfd no longer holds, are left out. When two
// programs of the config hold different maps of one name (each program's
// .rodata), the map of the program with the lowest id is the config's.
func mapsOf(progs []Program, config, namespace string) (*configMaps, error) {
	if config == "" {
		return nil, fmt.Errorf("%w: no config named", ErrInvalid)
	}
	owns := func(p *Program) bool { return p.Config == config && p.Namespace == namespace }
	byID := make(map[uint64]*Program, len(progs))
	var mine []*Program
	for i := range progs {
		p := &progs[i]
		byID[p.ID] = p
		if owns(p) {
			mine = append(mine, p)
		}
	}
	if len(mine) == 0 {
		return nil, fmt.Errorf("%s: %w: no program of it is loaded on this node (no such config, or not loaded here yet)", configName(config, namespace), ErrNotFound)
	}
	slices.SortFunc(mine, func(a, b *Program) int { return cmpUint(a.ID, b.ID) })
	c := &configMaps{config: config, namespace: namespace, maps: map[string]Map{}}
	if namespace != "" {
		c.namespaces = []string{namespace}
	} else {
		c.namespaces = slices.Clone(mine[0].ReaderNamespaces)
		for _, p := range mine[1:] {
			c.namespaces = slices.DeleteFunc(c.namespaces, func(ns string) bool { return !slices.Contains(p.ReaderNamespaces, ns) })
		}
		slices.Sort(c.namespaces)
		c.namespaces = slices.Compact(c.namespaces)
	}
	for _, p := range mine {
		for _, m := range p.Maps {
			creator := creatorOf(byID, p, m.ID)
			if creator == nil || !owns(creator) {
				continue
			}
			if _, taken := c.maps[m.Name]; !taken {
				c.maps[m.Name] = m
			}
		}
	}
	return c, nil
}

// creatorOf follows p's map owners to the program that created map id; nil
// when a map owner is gone.
func creatorOf(byID map[uint64]*Program, p *Program, id uint32) *Program {
	for range len(byID) + 1 {
		if p.MapOwnerID == 0 {
			return p
		}
		owner, ok := byID[p.MapOwnerID]
		if !ok {
			return nil
		}
		if !slices.ContainsFunc(owner.Maps, func(m Map) bool { return m.ID == id }) {
			return p
		}
		p = owner
	}
	return nil // a cycle of map owners
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
