package mapview

import (
	"fmt"

	"github.com/cilium/ebpf/btf"
)

// TypeName returns t's name as C writes it: "__u32", "struct event",
// "enum kind", "union u"; "char[16]" for an array, "" for nil.
func TypeName(t btf.Type) string {
	switch t := t.(type) {
	case nil:
		return ""
	case *btf.Struct:
		return "struct " + t.Name
	case *btf.Union:
		return "union " + t.Name
	case *btf.Enum:
		return "enum " + t.Name
	case *btf.Array:
		return fmt.Sprintf("%s[%d]", TypeName(t.Type), t.Nelems)
	case *btf.Pointer:
		return TypeName(t.Target) + " *"
	case *btf.Const:
		return "const " + TypeName(t.Type)
	case *btf.Volatile:
		return "volatile " + TypeName(t.Type)
	case *btf.Datasec:
		return t.Name
	}
	if t.TypeName() != "" {
		return t.TypeName()
	}
	return fmt.Sprintf("%T", t)
}
