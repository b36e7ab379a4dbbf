package mapview

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// Encode returns the bytes of the JSON value text as type t, the inverse of
// JSON: a number (or a "0x…" string) for an integer, an enum value's name or
// number, a string for a char array, a list for an array, an object for a
// struct (fields left out are zero). Pointers, unions and bitfields are not
// encoded (ErrUnsupported); a value that does not fit wraps ErrValue.
func Encode(t btf.Type, text []byte) ([]byte, error) {
	n, err := btf.Sizeof(t)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", TypeName(t), ErrUnsupported, err)
	}
	d := json.NewDecoder(bytes.NewReader(text))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("%s: %q: %w: %v", TypeName(t), text, ErrValue, err)
	}
	if d.More() {
		return nil, fmt.Errorf("%s: %q: %w: more than one value", TypeName(t), text, ErrValue)
	}
	b := make([]byte, n)
	if err := encode(t, v, b, 0); err != nil {
		return nil, fmt.Errorf("%s: %w", TypeName(t), err)
	}
	return b, nil
}

func encode(t btf.Type, v any, b []byte, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("nested more than %d deep: %w", MaxDepth, ErrUnsupported)
	}
	switch t := btf.UnderlyingType(t).(type) {
	case *btf.Int:
		if t.Encoding == btf.Bool {
			if bv, ok := v.(bool); ok {
				if bv {
					return storeUint(b, int(t.Size), 1)
				}
				return nil
			}
		}
		return encodeInt(v, t.Encoding == btf.Signed, b, int(t.Size))
	case *btf.Enum:
		if s, ok := v.(string); ok && !strings.HasPrefix(s, "0x") {
			for _, ev := range t.Values {
				if ev.Name == s {
					return storeUint(b, int(t.Size), ev.Value)
				}
			}
			return fmt.Errorf("%q: no such value: %w", s, ErrValue)
		}
		return encodeInt(v, t.Signed, b, int(t.Size))
	case *btf.Float:
		num, ok := v.(json.Number)
		if !ok {
			return fmt.Errorf("%v: want a number: %w", v, ErrValue)
		}
		f, err := num.Float64()
		if err != nil {
			return fmt.Errorf("%s: %w", num, ErrValue)
		}
		switch t.Size {
		case 4:
			order.PutUint32(b, math.Float32bits(float32(f)))
		case 8:
			order.PutUint64(b, math.Float64bits(f))
		default:
			return fmt.Errorf("float of %d bytes: %w", t.Size, ErrUnsupported)
		}
		return nil
	case *btf.Array:
		return encodeArray(t, v, b, depth)
	case *btf.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%v: want an object: %w", v, ErrValue)
		}
		for name, fv := range obj {
			m, ok := member(t.Members, name)
			if !ok {
				return fmt.Errorf("no field %q: %w", name, ErrValue)
			}
			if m.BitfieldSize != 0 || m.Offset%8 != 0 {
				return fmt.Errorf(".%s: bitfield: %w", name, ErrUnsupported)
			}
			n, err := btf.Sizeof(m.Type)
			if err != nil {
				return fmt.Errorf(".%s: %w: %v", name, ErrUnsupported, err)
			}
			off := int(m.Offset / 8)
			if off+n > len(b) {
				return fmt.Errorf(".%s: %w", name, ErrSize)
			}
			if err := encode(m.Type, fv, b[off:off+n], depth+1); err != nil {
				return fmt.Errorf(".%s: %w", name, err)
			}
		}
		return nil
	default:
		return fmt.Errorf("%T: %w", t, ErrUnsupported)
	}
}

func member(ms []btf.Member, name string) (btf.Member, bool) {
	for _, m := range ms {
		if m.Name == name {
			return m, true
		}
	}
	return btf.Member{}, false
}

func encodeArray(t *btf.Array, v any, b []byte, depth int) error {
	es, err := btf.Sizeof(t.Type)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	if s, ok := v.(string); ok && isChar(t.Type) {
		if len(s) > int(t.Nelems) {
			return fmt.Errorf("%q: longer than %d bytes: %w", s, t.Nelems, ErrValue)
		}
		copy(b, s)
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		return fmt.Errorf("%v: want a list: %w", v, ErrValue)
	}
	if len(list) > int(t.Nelems) {
		return fmt.Errorf("%d elements, at most %d: %w", len(list), t.Nelems, ErrValue)
	}
	for i, ev := range list {
		if err := encode(t.Type, ev, b[i*es:(i+1)*es], depth+1); err != nil {
			return fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return nil
}

// encodeInt stores a JSON number, or a "0x…" string, as an integer of size
// bytes, refusing values that do not fit.
func encodeInt(v any, signed bool, b []byte, size int) error {
	var s string
	switch v := v.(type) {
	case json.Number:
		s = v.String()
	case string:
		s = v
	default:
		return fmt.Errorf("%v: want an integer: %w", v, ErrValue)
	}
	bits := 8 * size
	if size != 1 && size != 2 && size != 4 && size != 8 {
		return fmt.Errorf("integer of %d bytes: %w", size, ErrUnsupported)
	}
	if signed && !strings.HasPrefix(s, "0x") {
		n, err := strconv.ParseInt(s, 10, bits)
		if err != nil {
			return fmt.Errorf("%s: %w: %v", s, ErrValue, err.(*strconv.NumError).Err)
		}
		return storeUint(b, size, uint64(n))
	}
	n, err := strconv.ParseUint(s, 0, bits)
	if err != nil {
		return fmt.Errorf("%s: %w: %v", s, ErrValue, err.(*strconv.NumError).Err)
	}
	return storeUint(b, size, n)
}

func storeUint(b []byte, size int, v uint64) error {
	if len(b) < size {
		return ErrSize
	}
	switch size {
	case 1:
		b[0] = byte(v)
	case 2:
		order.PutUint16(b, uint16(v))
	case 4:
		order.PutUint32(b, uint32(v))
	case 8:
		order.PutUint64(b, v)
	default:
		return fmt.Errorf("integer of %d bytes: %w", size, ErrUnsupported)
	}
	return nil
}
