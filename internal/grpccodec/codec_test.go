package grpccodec

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	protocodec "google.golang.org/grpc/encoding/proto"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/testing/protocmp"

	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// TestWireFormat holds the generated encoding to protobuf's: every message
// of bpfd.v1, each field set (nested messages two levels deep, repeated
// fields and maps with two entries, unknown fields too), encoded by one
// and decoded by the other, both ways, is the same message.
func TestWireFormat(t *testing.T) {
	c := Codec()
	if c.Name() != protocodec.Name {
		t.Fatalf("codec named %q, want gRPC's name for protobuf, %q", c.Name(), protocodec.Name)
	}
	n := 0
	protoregistry.GlobalTypes.RangeMessages(func(mt protoreflect.MessageType) bool {
		if mt.Descriptor().ParentFile().Package() != "bpfd.v1" {
			return true
		}
		n++
		name := string(mt.Descriptor().FullName())
		t.Run(name, func(t *testing.T) {
			want := mt.New()
			fill(want, 2)
			want.SetUnknown(protoreflect.RawFields{0xf8, 0x3f, 0x01}) // field 1023, varint 1
			msg := want.Interface()
			if _, ok := msg.(generated); !ok {
				t.Fatalf("%s has no generated encoding (make generate)", name)
			}

			data, err := c.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			got := mt.New().Interface()
			if err := proto.Unmarshal(data.Materialize(), got); err != nil {
				t.Fatalf("protobuf decoding the codec's: %v", err)
			}
			if diff := cmp.Diff(msg, got, protocmp.Transform()); diff != "" {
				t.Errorf("codec, then protobuf (-want +got):\n%s", diff)
			}

			raw, err := proto.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			got = mt.New().Interface()
			fill(got.ProtoReflect(), 1) // decoding replaces what was there
			if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(raw)}, got); err != nil {
				t.Fatalf("codec decoding protobuf's: %v", err)
			}
			if diff := cmp.Diff(msg, got, protocmp.Transform()); diff != "" {
				t.Errorf("protobuf, then codec (-want +got):\n%s", diff)
			}
		})
		return true
	})
	if n < 20 {
		t.Fatalf("%d bpfd.v1 messages registered, want the API's", n)
	}

	// Other messages go to gRPC's codec.
	h := &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}
	data, err := c.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var got healthpb.HealthCheckResponse
	if err := c.Unmarshal(data, &got); err != nil || got.GetStatus() != h.GetStatus() {
		t.Fatalf("health response through the codec: %v, %v", &got, err)
	}
	if _, err := c.Marshal(struct{}{}); err == nil {
		t.Error("a value that is no message was encoded")
	}
}

// fill sets every field of m, nested messages down to depth levels.
func fill(m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		switch {
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for j := 0; j < 2; j++ {
				v := mp.NewValue()
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					if depth == 0 {
						continue
					}
					fill(v.Message(), depth-1)
				} else {
					v = scalar(fd.MapValue(), j)
				}
				mp.Set(scalar(fd.MapKey(), j).MapKey(), v)
			}
		case fd.IsList():
			l := m.Mutable(fd).List()
			for j := 0; j < 2; j++ {
				if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
					if depth == 0 {
						continue
					}
					v := l.NewElement()
					fill(v.Message(), depth-1)
					l.Append(v)
				} else {
					l.Append(scalar(fd, j))
				}
			}
		case fd.Kind() == protoreflect.MessageKind:
			if depth > 0 && fd.ContainingOneof() == nil || depth > 0 && !m.Has(fd) && oneofFree(m, fd) {
				fill(m.Mutable(fd).Message(), depth-1)
			}
		default:
			if fd.ContainingOneof() == nil || oneofFree(m, fd) {
				m.Set(fd, scalar(fd, 1))
			}
		}
	}
}

// oneofFree reports whether no field of fd's oneof is set yet.
func oneofFree(m protoreflect.Message, fd protoreflect.FieldDescriptor) bool {
	return m.WhichOneof(fd.ContainingOneof()) == nil
}

// scalar returns a value of fd's kind, distinct for each j.
func scalar(fd protoreflect.FieldDescriptor, j int) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(j%2 == 1)
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		return protoreflect.ValueOfEnum(vals.Get((j + 1) % vals.Len()).Number())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(-7 - j))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(int64(-1<<40 - j))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(300 + j))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(uint64(1<<40 + j))
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(j) + 0.5)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(float64(j) + 0.25)
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(fmt.Sprintf("s%d-é", j))
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte{0, byte(j), 0xff})
	}
	panic(fmt.Sprintf("field %s: kind %s", fd.FullName(), fd.Kind()))
}

var _ = pb.File_bpfd_v1_bpfd_proto // registers bpfd.v1's messages
