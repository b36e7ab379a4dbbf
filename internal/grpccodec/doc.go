// Package grpccodec is the gRPC codec bpfd and bpfctl speak bpfd's API
// with: protobuf, encoding and decoding bpfd.v1's messages with
// the code generated for them beside the API (the *_vtproto.pb.go files),
// without the reflection that protobuf's runtime sets up for a message
// type on its first use, and every other message (health, reflection,
// status details) with gRPC's own proto codec. Both write the same wire
// format.
package grpccodec
