package artifact

import (
	"fmt"
	"slices"
	"strings"
)

// checkConfig compares the config a bpfd manifest declares with the one
// Describe derives from its objects, and returns an error naming the first
// disagreement: a reader never reports, writes or acts on metadata its
// objects do not back. Build.Tool, Source and Revision are not derived from
// the objects and are not compared.
func checkConfig(declared *Config, objects []objectSource) error {
	derived, err := describe(objects)
	if err != nil {
		return err
	}
	if d := configDifference(declared, derived); d != "" {
		return fmt.Errorf("%w: %w: %s", ErrUnsupported, ErrConfigMismatch, d)
	}
	return nil
}

// configDifference describes the first difference between the config
// declared and the config derived from the objects, or returns "".
func configDifference(declared, derived *Config) string {
	if declared.ByteOrder != derived.ByteOrder {
		return fmt.Sprintf("byte order %q in the config, %q in the objects", declared.ByteOrder, derived.ByteOrder)
	}
	byName := map[string]*Object{}
	for i := range derived.Objects {
		byName[derived.Objects[i].Name] = &derived.Objects[i]
	}
	for i := range declared.Objects {
		o := &declared.Objects[i]
		d, ok := byName[o.Name]
		if !ok {
			return fmt.Sprintf("the config describes object %q, which no layer holds", o.Name)
		}
		if diff := objectDifference(o, d); diff != "" {
			return fmt.Sprintf("object %s: %s", o.Name, diff)
		}
	}
	r, d := declared.Requires, derived.Requires
	for _, f := range []struct {
		name        string
		config, elf []string
	}{
		{"programTypes", r.ProgramTypes, d.ProgramTypes},
		{"attachTypes", r.AttachTypes, d.AttachTypes},
		{"mapTypes", r.MapTypes, d.MapTypes},
		{"helpers", r.Helpers, d.Helpers},
		{"kfuncs", r.Kfuncs, d.Kfuncs},
	} {
		if !slices.Equal(f.config, f.elf) {
			return fmt.Sprintf("requires.%s: %s in the config, %s in the objects", f.name, listOf(f.config), listOf(f.elf))
		}
	}
	if r.KernelBTF != d.KernelBTF {
		return fmt.Sprintf("requires.kernelBTF: %t in the config, %t in the objects", r.KernelBTF, d.KernelBTF)
	}
	if !slices.Equal(declared.Build.Compilers, derived.Build.Compilers) {
		return fmt.Sprintf("build.compilers: %s in the config, %s in the objects", listOf(declared.Build.Compilers), listOf(derived.Build.Compilers))
	}
	return ""
}

func objectDifference(o, d *Object) string {
	if o.BTF != d.BTF {
		return fmt.Sprintf("btf: %t in the config, %t in the object", o.BTF, d.BTF)
	}
	if diff := setDifference("program", len(o.Programs), len(d.Programs), names(o.Programs, func(p Program) string { return p.Name }), names(d.Programs, func(p Program) string { return p.Name })); diff != "" {
		return diff
	}
	for i := range o.Programs {
		p, q := o.Programs[i], d.Programs[i]
		if diff := fieldDifference([][3]string{
			{"section", p.Section, q.Section},
			{"type", p.Type, q.Type},
			{"attachType", p.AttachType, q.AttachType},
			{"attachTarget", p.AttachTarget, q.AttachTarget},
			{"kinds", kindList(p), kindList(q)},
			{"license", p.License, q.License},
			{"instructions", fmt.Sprint(p.Instructions), fmt.Sprint(q.Instructions)},
		}); diff != "" {
			return fmt.Sprintf("program %s: %s", p.Name, diff)
		}
	}
	if diff := setDifference("map", len(o.Maps), len(d.Maps), names(o.Maps, func(m Map) string { return m.Name }), names(d.Maps, func(m Map) string { return m.Name })); diff != "" {
		return diff
	}
	for i := range o.Maps {
		m, n := o.Maps[i], d.Maps[i]
		if diff := fieldDifference([][3]string{
			{"type", m.Type, n.Type},
			{"keySize", fmt.Sprint(m.KeySize), fmt.Sprint(n.KeySize)},
			{"valueSize", fmt.Sprint(m.ValueSize), fmt.Sprint(n.ValueSize)},
			{"maxEntries", fmt.Sprint(m.MaxEntries), fmt.Sprint(n.MaxEntries)},
			{"flags", fmt.Sprint(m.Flags), fmt.Sprint(n.Flags)},
			{"pinning", m.Pinning, n.Pinning},
		}); diff != "" {
			return fmt.Sprintf("map %s: %s", m.Name, diff)
		}
	}
	if diff := setDifference("data section", len(o.DataSections), len(d.DataSections), names(o.DataSections, func(s DataSection) string { return s.Name }), names(d.DataSections, func(s DataSection) string { return s.Name })); diff != "" {
		return diff
	}
	for i := range o.DataSections {
		s, t := o.DataSections[i], d.DataSections[i]
		if diff := fieldDifference([][3]string{
			{"readOnly", fmt.Sprint(s.ReadOnly), fmt.Sprint(t.ReadOnly)},
			{"size", fmt.Sprint(s.Size), fmt.Sprint(t.Size)},
		}); diff != "" {
			return fmt.Sprintf("data section %s: %s", s.Name, diff)
		}
		if diff := setDifference("global", len(s.Globals), len(t.Globals), names(s.Globals, func(g Global) string { return g.Name }), names(t.Globals, func(g Global) string { return g.Name })); diff != "" {
			return fmt.Sprintf("data section %s: %s", s.Name, diff)
		}
		for j := range s.Globals {
			g, h := s.Globals[j], t.Globals[j]
			if diff := fieldDifference([][3]string{
				{"offset", fmt.Sprint(g.Offset), fmt.Sprint(h.Offset)},
				{"size", fmt.Sprint(g.Size), fmt.Sprint(h.Size)},
				{"type", g.Type, h.Type},
			}); diff != "" {
				return fmt.Sprintf("data section %s: global %s: %s", s.Name, g.Name, diff)
			}
		}
	}
	return ""
}

// setDifference compares the names (in order) of what the config lists and
// what the object has, and describes the first one only one side has.
func setDifference(what string, nConfig, nObject int, config, object []string) string {
	if slices.Equal(config, object) {
		return ""
	}
	count := fmt.Sprintf("(the config lists %d %ss, the object has %d)", nConfig, what, nObject)
	inObject, inConfig := set(object), set(config)
	for _, n := range config {
		if !inObject[n] {
			return fmt.Sprintf("the config lists %s %q, which the object does not define %s", what, n, count)
		}
	}
	for _, n := range object {
		if !inConfig[n] {
			return fmt.Sprintf("the object defines %s %q, which the config does not list %s", what, n, count)
		}
	}
	return fmt.Sprintf("%ss out of order or repeated in the config %s", what, count)
}

// fieldDifference describes the first field whose config value (1) differs
// from the object's (2).
func fieldDifference(fields [][3]string) string {
	for _, f := range fields {
		if f[1] != f[2] {
			return fmt.Sprintf("%s %q in the config, %q in the object", f[0], f[1], f[2])
		}
	}
	return ""
}

func names[T any](items []T, name func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = name(it)
	}
	return out
}

func set(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func kindList(p Program) string {
	s := make([]string, len(p.Kinds))
	for i, k := range p.Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ",")
}

func listOf(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return "[" + strings.Join(s, ", ") + "]"
}
