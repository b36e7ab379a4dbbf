package mapview

import (
	"fmt"

	"github.com/cilium/ebpf/btf"
)

// Sum adds per-CPU values of type t field by field. Only values made of
// integers (in structs and arrays, but not chars, bools, enums or
// bitfields) sum: for others it returns ErrUnsupported, and the values are
// best shown per CPU. Each value must be as long as t (ErrSize).
func Sum(t btf.Type, values [][]byte) ([]byte, error) {
	n, err := btf.Sizeof(t)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", TypeName(t), ErrUnsupported, err)
	}
	out := make([]byte, n)
	for i, v := range values {
		if len(v) != n {
			return nil, fmt.Errorf("%s: CPU %d: %d bytes, want %d: %w", TypeName(t), i, len(v), n, ErrSize)
		}
		if err := add(t, out, v, 0); err != nil {
			return nil, fmt.Errorf("%s: %w", TypeName(t), err)
		}
	}
	return out, nil
}

// add adds v to acc, both of type t.
func add(t btf.Type, acc, v []byte, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("nested more than %d deep: %w", MaxDepth, ErrUnsupported)
	}
	switch t := btf.UnderlyingType(t).(type) {
	case *btf.Int:
		if t.Encoding == btf.Bool || t.Encoding == btf.Char {
			return fmt.Errorf("%s: not a number: %w", TypeName(t), ErrUnsupported)
		}
		size := int(t.Size)
		if size > len(acc) || size > len(v) {
			return ErrSize
		}
		return storeUint(acc, size, loadUint(acc[:size])+loadUint(v[:size]))
	case *btf.Array:
		es, err := btf.Sizeof(t.Type)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnsupported, err)
		}
		for i := range int(t.Nelems) {
			if (i+1)*es > len(acc) {
				return ErrSize
			}
			if err := add(t.Type, acc[i*es:(i+1)*es], v[i*es:(i+1)*es], depth+1); err != nil {
				return err
			}
		}
		return nil
	case *btf.Struct:
		for _, m := range t.Members {
			if m.BitfieldSize != 0 || m.Offset%8 != 0 {
				return fmt.Errorf(".%s: bitfield: %w", m.Name, ErrUnsupported)
			}
			n, err := btf.Sizeof(m.Type)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrUnsupported, err)
			}
			off := int(m.Offset / 8)
			if off+n > len(acc) {
				return ErrSize
			}
			if err := add(m.Type, acc[off:off+n], v[off:off+n], depth+1); err != nil {
				return fmt.Errorf(".%s: %w", m.Name, err)
			}
		}
		return nil
	default:
		return fmt.Errorf("%s: %w", TypeName(t), ErrUnsupported)
	}
}
