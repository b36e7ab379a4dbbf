package protocompat

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Compile compiles the .proto source src, named name, with the
// well-known imports (google/protobuf/*.proto) at hand.
func Compile(name string, src []byte) (protoreflect.FileDescriptor, error) {
	return CompileWith(name, map[string][]byte{name: src})
}

// CompileWith is Compile of the file name among srcs (import path to
// source), which holds the files it imports but the standard ones.
func CompileWith(name string, srcs map[string][]byte) (protoreflect.FileDescriptor, error) {
	m := map[string]string{}
	for path, src := range srcs {
		m[path] = string(src)
	}
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			Accessor: protocompile.SourceAccessorFromMap(m),
		}),
	}
	files, err := c.Compile(context.Background(), name)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", name, err)
	}
	return files[0], nil
}

// Breaking returns every way in which cur breaks clients of prev, one
// sentence each, sorted; none when cur is compatible.
func Breaking(prev, cur protoreflect.FileDescriptor) []string {
	c := &checker{}
	if prev.Package() != cur.Package() {
		c.add("package %s became %s", prev.Package(), cur.Package())
	}
	if p, n := goPackage(prev), goPackage(cur); p != n {
		c.add("go_package %q became %q", p, n)
	}
	c.messages(prev.Messages(), cur)
	c.enums(prev.Enums(), cur)
	for i := range prev.Services().Len() {
		c.service(prev.Services().Get(i), cur)
	}
	slices.Sort(c.problems)
	return c.problems
}

type checker struct{ problems []string }

func (c *checker) add(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func goPackage(f protoreflect.FileDescriptor) string {
	if o, ok := f.Options().(*descriptorpb.FileOptions); ok {
		return o.GetGoPackage()
	}
	return ""
}

// find returns the descriptor of cur with the full name, nil when none.
func find(cur protoreflect.FileDescriptor, name protoreflect.FullName) protoreflect.Descriptor {
	var found protoreflect.Descriptor
	var walkMessages func(protoreflect.MessageDescriptors)
	walkEnums := func(es protoreflect.EnumDescriptors) {
		for i := range es.Len() {
			if es.Get(i).FullName() == name {
				found = es.Get(i)
			}
		}
	}
	walkMessages = func(ms protoreflect.MessageDescriptors) {
		for i := range ms.Len() {
			m := ms.Get(i)
			if m.FullName() == name {
				found = m
			}
			walkEnums(m.Enums())
			walkMessages(m.Messages())
		}
	}
	walkMessages(cur.Messages())
	walkEnums(cur.Enums())
	for i := range cur.Services().Len() {
		if s := cur.Services().Get(i); s.FullName() == name {
			found = s
		}
	}
	return found
}

func (c *checker) messages(ms protoreflect.MessageDescriptors, cur protoreflect.FileDescriptor) {
	for i := range ms.Len() {
		m := ms.Get(i)
		if m.IsMapEntry() {
			continue // checked with its map field
		}
		n, ok := find(cur, m.FullName()).(protoreflect.MessageDescriptor)
		if !ok {
			c.add("message %s was deleted", m.FullName())
			continue
		}
		c.message(m, n)
		c.messages(m.Messages(), cur)
		c.enums(m.Enums(), cur)
	}
}

func (c *checker) message(prev, cur protoreflect.MessageDescriptor) {
	for i := range prev.Fields().Len() {
		f := prev.Fields().Get(i)
		g := cur.Fields().ByNumber(f.Number())
		if g == nil {
			if !cur.ReservedRanges().Has(f.Number()) {
				c.add("field %s (%d) was deleted without reserving its number", f.FullName(), f.Number())
			}
			if !cur.ReservedNames().Has(f.Name()) {
				c.add("field %s (%d) was deleted without reserving its name (JSON clients send it by name)", f.FullName(), f.Number())
			}
			continue
		}
		c.field(f, g)
	}
	for i := range prev.ReservedRanges().Len() {
		r := prev.ReservedRanges().Get(i)
		for _, n := range sample(int64(r[0]), int64(r[1])-1) {
			if !cur.ReservedRanges().Has(protoreflect.FieldNumber(n)) {
				c.add("message %s no longer reserves field number %d", prev.FullName(), n)
				break
			}
		}
	}
	for i := range prev.ReservedNames().Len() {
		if name := prev.ReservedNames().Get(i); !cur.ReservedNames().Has(name) && cur.Fields().ByName(name) == nil {
			c.add("message %s no longer reserves field name %s", prev.FullName(), name)
		}
	}
}

func (c *checker) field(prev, cur protoreflect.FieldDescriptor) {
	where := fmt.Sprintf("field %s (%d)", prev.FullName(), prev.Number())
	if prev.Name() != cur.Name() {
		c.add("%s was renamed %s", where, cur.Name())
	}
	if prev.JSONName() != cur.JSONName() {
		c.add("%s: JSON name %s became %s", where, prev.JSONName(), cur.JSONName())
	}
	if p, n := typeName(prev), typeName(cur); p != n {
		c.add("%s: type %s became %s", where, p, n)
	}
	if prev.Cardinality() != cur.Cardinality() {
		c.add("%s: %s became %s", where, prev.Cardinality(), cur.Cardinality())
	}
	if prev.HasPresence() != cur.HasPresence() {
		c.add("%s: presence tracking changed (optional added or removed)", where)
	}
	if p, n := oneofName(prev), oneofName(cur); p != n {
		c.add("%s: oneof %q became %q", where, p, n)
	}
}

// typeName names a field's type: its kind, the message or enum, and for
// maps their key and value types.
func typeName(f protoreflect.FieldDescriptor) string {
	switch {
	case f.IsMap():
		return "map<" + typeName(f.MapKey()) + ", " + typeName(f.MapValue()) + ">"
	case f.Kind() == protoreflect.MessageKind || f.Kind() == protoreflect.GroupKind:
		return string(f.Message().FullName())
	case f.Kind() == protoreflect.EnumKind:
		return "enum " + string(f.Enum().FullName())
	}
	return f.Kind().String()
}

func oneofName(f protoreflect.FieldDescriptor) string {
	if o := f.ContainingOneof(); o != nil && !o.IsSynthetic() {
		return string(o.Name())
	}
	return ""
}

func (c *checker) enums(es protoreflect.EnumDescriptors, cur protoreflect.FileDescriptor) {
	for i := range es.Len() {
		e := es.Get(i)
		n, ok := find(cur, e.FullName()).(protoreflect.EnumDescriptor)
		if !ok {
			c.add("enum %s was deleted", e.FullName())
			continue
		}
		c.enum(e, n)
	}
}

func (c *checker) enum(prev, cur protoreflect.EnumDescriptor) {
	for i := range prev.Values().Len() {
		v := prev.Values().Get(i)
		w := cur.Values().ByNumber(v.Number())
		if w == nil {
			if !cur.ReservedRanges().Has(v.Number()) {
				c.add("enum value %s (%d) was deleted without reserving its number", v.FullName(), v.Number())
			}
			if !cur.ReservedNames().Has(v.Name()) {
				c.add("enum value %s (%d) was deleted without reserving its name (JSON carries enums by name)", v.FullName(), v.Number())
			}
			continue
		}
		if v.Name() != w.Name() && cur.Values().ByName(v.Name()) == nil {
			c.add("enum value %s (%d) was renamed %s", v.FullName(), v.Number(), w.Name())
		}
	}
	for i := range prev.ReservedRanges().Len() {
		r := prev.ReservedRanges().Get(i)
		for _, n := range sample(int64(r[0]), int64(r[1])) {
			if !cur.ReservedRanges().Has(protoreflect.EnumNumber(n)) {
				c.add("enum %s no longer reserves value %d", prev.FullName(), n)
				break
			}
		}
	}
	for i := range prev.ReservedNames().Len() {
		if name := prev.ReservedNames().Get(i); !cur.ReservedNames().Has(name) && cur.Values().ByName(name) == nil {
			c.add("enum %s no longer reserves value name %s", prev.FullName(), name)
		}
	}
}

func (c *checker) service(prev protoreflect.ServiceDescriptor, cur protoreflect.FileDescriptor) {
	s, ok := find(cur, prev.FullName()).(protoreflect.ServiceDescriptor)
	if !ok {
		c.add("service %s was deleted", prev.FullName())
		return
	}
	for i := range prev.Methods().Len() {
		m := prev.Methods().Get(i)
		n := s.Methods().ByName(m.Name())
		if n == nil {
			c.add("rpc %s was deleted", m.FullName())
			continue
		}
		if m.Input().FullName() != n.Input().FullName() {
			c.add("rpc %s: request %s became %s", m.FullName(), m.Input().FullName(), n.Input().FullName())
		}
		if m.Output().FullName() != n.Output().FullName() {
			c.add("rpc %s: response %s became %s", m.FullName(), m.Output().FullName(), n.Output().FullName())
		}
		if m.IsStreamingClient() != n.IsStreamingClient() || m.IsStreamingServer() != n.IsStreamingServer() {
			c.add("rpc %s: streaming changed", m.FullName())
		}
	}
}

// sample returns the numbers from first to last, both included; of a
// range too long to list (reserved 1000 to max), its ends and a few between.
func sample(first, last int64) []int64 {
	if last-first < 4096 {
		var all []int64
		for n := first; n <= last; n++ {
			all = append(all, n)
		}
		return all
	}
	step := (last - first) / 16
	var some []int64
	for n := first; n < last; n += step {
		some = append(some, n)
	}
	return append(some, last)
}

// Summary describes what cur adds to prev, for a test's log: messages,
// fields, enum values and rpcs.
func Summary(prev, cur protoreflect.FileDescriptor) string {
	var added []string
	var walk func(protoreflect.MessageDescriptors)
	walk = func(ms protoreflect.MessageDescriptors) {
		for i := range ms.Len() {
			m := ms.Get(i)
			if m.IsMapEntry() {
				continue
			}
			p, ok := find(prev, m.FullName()).(protoreflect.MessageDescriptor)
			if !ok {
				added = append(added, "message "+string(m.FullName()))
			} else {
				for j := range m.Fields().Len() {
					if f := m.Fields().Get(j); p.Fields().ByNumber(f.Number()) == nil {
						added = append(added, fmt.Sprintf("field %s (%d)", f.FullName(), f.Number()))
					}
				}
			}
			walk(m.Messages())
		}
	}
	walk(cur.Messages())
	for i := range cur.Enums().Len() {
		e := cur.Enums().Get(i)
		p, _ := find(prev, e.FullName()).(protoreflect.EnumDescriptor)
		for j := range e.Values().Len() {
			if v := e.Values().Get(j); p == nil || p.Values().ByNumber(v.Number()) == nil {
				added = append(added, fmt.Sprintf("enum value %s (%d)", v.FullName(), v.Number()))
			}
		}
	}
	for i := range cur.Services().Len() {
		svc := cur.Services().Get(i)
		p, _ := find(prev, svc.FullName()).(protoreflect.ServiceDescriptor)
		for j := range svc.Methods().Len() {
			if m := svc.Methods().Get(j); p == nil || p.Methods().ByName(m.Name()) == nil {
				added = append(added, fmt.Sprintf("rpc %s (%s)", m.FullName(), m.Input().ParentFile().Path()))
			}
		}
	}
	return strings.Join(added, ", ")
}
