// Package servertest sends requests that no well-behaved client can: bytes
// that are not valid protobuf. A service's bad-input test uses it to check
// that such a request is refused as bad input (InvalidArgument, naming the
// field) rather than failing (Internal):
//
//	_, err := client.RegisterVendor(ctx, req, servertest.InvalidUTF8("vendor_id"))
//	platformtest.WantField(t, err, "vendor_id")
//
// or, as a row of a table of bad requests, CallInvalidUTF8.
package servertest

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// BadUTF8 is what InvalidUTF8 puts in a string field: no UTF-8 sequence
// starts with 0xff.
const BadUTF8 = "\xff\xfe"

// InvalidUTF8 is a call option that sends the request with its string
// field named field (top level, by its proto name) holding BadUTF8, which
// protobuf-go refuses to decode in a proto3 string; for a repeated field
// it adds an element. The call fails on the client if the request has no
// such field.
func InvalidUTF8(field string) grpc.CallOption {
	return grpc.ForceCodecV2(codec{mutate: func(m proto.Message, b []byte) ([]byte, error) {
		fd := m.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(field))
		if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsMap() {
			return nil, fmt.Errorf("servertest: %s has no string field %q", m.ProtoReflect().Descriptor().FullName(), field)
		}
		// The last value of a singular field wins when decoding.
		b = protowire.AppendTag(b, fd.Number(), protowire.BytesType)
		return protowire.AppendString(b, BadUTF8), nil
	}})
}

// Truncated is a call option that sends the request without its last
// byte, which no non-empty message survives.
func Truncated() grpc.CallOption {
	return grpc.ForceCodecV2(codec{mutate: func(m proto.Message, b []byte) ([]byte, error) {
		if len(b) == 0 {
			return nil, fmt.Errorf("servertest: an empty %s cannot be truncated", m.ProtoReflect().Descriptor().FullName())
		}
		return b[:len(b)-1], nil
	}})
}

// codec marshals a request and then mutates its bytes; it reads responses
// as the proto codec does.
type codec struct {
	mutate func(proto.Message, []byte) ([]byte, error)
}

// Name is the proto codec's, so that the call's content type is the usual.
func (codec) Name() string { return "proto" }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("servertest: %T is not a proto.Message", v)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	if b, err = c.mutate(m, b); err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("servertest: %T is not a proto.Message", v)
	}
	return proto.Unmarshal(data.Materialize(), m)
}

// CallInvalidUTF8 returns a call of rpc with req whose string field holds
// invalid UTF-8 (InvalidUTF8), for a table of bad requests:
//
//	{"title not UTF-8", servertest.CallInvalidUTF8(c.CreateProduct, ctx, req, "title"), "title"},
func CallInvalidUTF8[Req, Resp any](rpc func(context.Context, Req, ...grpc.CallOption) (Resp, error), ctx context.Context, req Req, field string) func() error {
	return func() error {
		_, err := rpc(ctx, req, InvalidUTF8(field))
		return err
	}
}
