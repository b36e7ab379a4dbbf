package grpccodec

import (
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// generated is a message with generated encoding and decoding.
type generated interface {
	SizeVT() int
	MarshalToSizedBufferVT([]byte) (int, error)
	UnmarshalVT([]byte) error
	Reset()
}

// codec encodes generated messages with their generated code, and hands
// every other message to gRPC's proto codec.
type codec struct {
	fallback encoding.CodecV2
}

var _ encoding.CodecV2 = codec{}

// Codec returns the codec, for a client's grpc.ForceCodecV2 and a
// server's grpc.ForceServerCodecV2: it encodes generated messages with
// their generated code and every other message with gRPC's proto codec,
// under gRPC's name for protobuf ("proto"), so that either side may use
// gRPC's own codec instead.
func Codec() encoding.CodecV2 {
	return codec{fallback: encoding.GetCodecV2(protocodec.Name)}
}

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(generated)
	if !ok {
		return c.fallback.Marshal(v)
	}
	size := m.SizeVT()
	if mem.IsBelowBufferPoolingThreshold(size) {
		buf := make([]byte, size)
		if _, err := m.MarshalToSizedBufferVT(buf); err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	if _, err := m.MarshalToSizedBufferVT(*buf); err != nil {
		pool.Put(buf)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(generated)
	if !ok {
		return c.fallback.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	// The generated decoding copies what it keeps (no aliasing of buf),
	// and merges into the message as protobuf does: reset it first, as
	// proto.Unmarshal does.
	m.Reset()
	return m.UnmarshalVT(buf.ReadOnlyData())
}

func (codec) Name() string { return protocodec.Name }
