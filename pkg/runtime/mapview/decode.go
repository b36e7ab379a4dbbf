package mapview

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/cilium/ebpf/btf"
)

// MaxDepth bounds how deeply types may nest, against self-referencing or
// hostile BTF.
const MaxDepth = 32

// order is the byte order of the maps: the host's.
var order = binary.NativeEndian

// JSON returns b decoded as t. b must be exactly as long as t (ErrSize).
func JSON(t btf.Type, b []byte) ([]byte, error) {
	n, err := btf.Sizeof(t)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", TypeName(t), ErrUnsupported, err)
	}
	if n != len(b) {
		return nil, fmt.Errorf("%s: %d bytes, want %d: %w", TypeName(t), len(b), n, ErrSize)
	}
	var buf bytes.Buffer
	if err := decode(&buf, t, b, 0); err != nil {
		return nil, fmt.Errorf("%s: %w", TypeName(t), err)
	}
	return buf.Bytes(), nil
}

func decode(w *bytes.Buffer, t btf.Type, b []byte, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("nested more than %d deep: %w", MaxDepth, ErrUnsupported)
	}
	switch t := btf.UnderlyingType(t).(type) {
	case *btf.Int:
		return decodeInt(w, t.Encoding == btf.Signed, t.Encoding == btf.Bool, b, int(t.Size))
	case *btf.Enum:
		if int(t.Size) > len(b) {
			return ErrSize
		}
		v := loadUint(b[:t.Size])
		for _, ev := range t.Values {
			if ev.Value == v || t.Signed && int64(ev.Value) == signExtend(v, int(t.Size)) {
				return writeJSON(w, ev.Name)
			}
		}
		return decodeInt(w, t.Signed, false, b, int(t.Size))
	case *btf.Pointer:
		return decodeInt(w, false, false, b, len(b))
	case *btf.Float:
		return decodeFloat(w, b, int(t.Size))
	case *btf.Array:
		return decodeArray(w, t, b, depth)
	case *btf.Struct:
		return decodeMembers(w, t.Members, b, depth)
	case *btf.Union:
		return decodeMembers(w, t.Members, b, depth)
	case *btf.Datasec:
		return decodeDatasec(w, t, b, depth)
	case *btf.Var:
		return decode(w, t.Type, b, depth+1)
	default:
		return fmt.Errorf("%T: %w", t, ErrUnsupported)
	}
}

func decodeInt(w *bytes.Buffer, signed, boolean bool, b []byte, size int) error {
	if size > len(b) {
		return ErrSize
	}
	b = b[:size]
	if size == 16 {
		// __int128: as a hex string, there is no JSON number for it.
		hi, lo := order.Uint64(b[8:]), order.Uint64(b[:8])
		if order == binary.ByteOrder(binary.BigEndian) {
			hi, lo = lo, hi
		}
		return writeJSON(w, fmt.Sprintf("0x%016x%016x", hi, lo))
	}
	if size != 1 && size != 2 && size != 4 && size != 8 {
		return writeJSON(w, fmt.Sprintf("0x%x", b))
	}
	v := loadUint(b)
	switch {
	case boolean:
		w.WriteString(strconv.FormatBool(v != 0))
	case signed:
		w.WriteString(strconv.FormatInt(signExtend(v, size), 10))
	default:
		w.WriteString(strconv.FormatUint(v, 10))
	}
	return nil
}

func decodeFloat(w *bytes.Buffer, b []byte, size int) error {
	var f float64
	switch {
	case size == 4 && len(b) >= 4:
		f = float64(math.Float32frombits(order.Uint32(b)))
	case size == 8 && len(b) >= 8:
		f = math.Float64frombits(order.Uint64(b))
	default:
		return writeJSON(w, fmt.Sprintf("0x%x", b[:min(size, len(b))]))
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return writeJSON(w, strconv.FormatFloat(f, 'g', -1, 64))
	}
	w.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
	return nil
}

// decodeArray writes a char array as a string up to its first NUL when it
// is valid UTF-8 without other control characters, any other array as a
// list.
func decodeArray(w *bytes.Buffer, t *btf.Array, b []byte, depth int) error {
	es, err := btf.Sizeof(t.Type)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	if int(t.Nelems)*es > len(b) {
		return ErrSize
	}
	if isChar(t.Type) {
		s := b[:t.Nelems]
		if i := bytes.IndexByte(s, 0); i >= 0 {
			s = s[:i]
		}
		if printable(s) {
			return writeJSON(w, string(s))
		}
	}
	w.WriteByte('[')
	for i := range int(t.Nelems) {
		if i > 0 {
			w.WriteByte(',')
		}
		if err := decode(w, t.Type, b[i*es:(i+1)*es], depth+1); err != nil {
			return fmt.Errorf("[%d]: %w", i, err)
		}
	}
	w.WriteByte(']')
	return nil
}

func decodeMembers(w *bytes.Buffer, ms []btf.Member, b []byte, depth int) error {
	w.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			w.WriteByte(',')
		}
		name := m.Name
		if name == "" {
			name = fmt.Sprintf("_%d", i)
		}
		if err := writeJSON(w, name); err != nil {
			return err
		}
		w.WriteByte(':')
		if err := decodeMember(w, m, b, depth); err != nil {
			return fmt.Errorf(".%s: %w", name, err)
		}
	}
	w.WriteByte('}')
	return nil
}

func decodeMember(w *bytes.Buffer, m btf.Member, b []byte, depth int) error {
	if m.BitfieldSize == 0 && m.Offset%8 == 0 {
		off := int(m.Offset / 8)
		n, err := btf.Sizeof(m.Type)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnsupported, err)
		}
		if off+n > len(b) {
			return ErrSize
		}
		return decode(w, m.Type, b[off:off+n], depth+1)
	}
	v, err := bitfield(m, b)
	if err != nil {
		return err
	}
	if in, ok := btf.UnderlyingType(m.Type).(*btf.Int); ok && in.Encoding == btf.Signed {
		w.WriteString(strconv.FormatInt(int64(v<<(64-m.BitfieldSize))>>(64-m.BitfieldSize), 10))
		return nil
	}
	w.WriteString(strconv.FormatUint(v, 10))
	return nil
}

// bitfield reads a little-endian bitfield member.
func bitfield(m btf.Member, b []byte) (uint64, error) {
	size := m.BitfieldSize
	if size == 0 || size > 64 {
		return 0, fmt.Errorf("bitfield of %d bits: %w", size, ErrUnsupported)
	}
	if order != binary.ByteOrder(binary.LittleEndian) {
		return 0, fmt.Errorf("bitfield on a big-endian host: %w", ErrUnsupported)
	}
	var v uint64
	for i := range uint64(size) {
		bit := uint64(m.Offset) + i
		if int(bit/8) >= len(b) {
			return 0, ErrSize
		}
		if b[bit/8]&(1<<(bit%8)) != 0 {
			v |= 1 << i
		}
	}
	return v, nil
}

func decodeDatasec(w *bytes.Buffer, t *btf.Datasec, b []byte, depth int) error {
	w.WriteByte('{')
	first := true
	for _, vs := range t.Vars {
		v, ok := vs.Type.(*btf.Var)
		if !ok {
			continue
		}
		end := int(vs.Offset) + int(vs.Size)
		if end > len(b) {
			return ErrSize
		}
		if !first {
			w.WriteByte(',')
		}
		first = false
		if err := writeJSON(w, v.Name); err != nil {
			return err
		}
		w.WriteByte(':')
		if err := decode(w, v.Type, b[vs.Offset:end], depth+1); err != nil {
			return fmt.Errorf(".%s: %w", v.Name, err)
		}
	}
	w.WriteByte('}')
	return nil
}

func isChar(t btf.Type) bool {
	in, ok := btf.UnderlyingType(t).(*btf.Int)
	return ok && in.Size == 1 && (in.Encoding == btf.Char || in.Name == "char" || in.Name == "unsigned char" || in.Name == "signed char")
}

func printable(s []byte) bool {
	if !utf8.Valid(s) {
		return false
	}
	for _, r := range string(s) {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return false
		}
	}
	return true
}

func loadUint(b []byte) uint64 {
	switch len(b) {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(order.Uint16(b))
	case 4:
		return uint64(order.Uint32(b))
	case 8:
		return order.Uint64(b)
	}
	return 0
}

func signExtend(v uint64, size int) int64 {
	shift := 64 - 8*size
	return int64(v<<shift) >> shift
}

func writeJSON(w *bytes.Buffer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Write(b)
	return nil
}
