package server

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Requests that are not valid protobuf are bad input, answered
// InvalidArgument. grpc-go would answer them Internal: when its codec fails
// to unmarshal a request it writes that status itself, before any
// interceptor or handler runs (and protobuf-go refuses invalid UTF-8 in a
// proto3 string, so a client cannot tell a bad string from a server fault).
//
// So the server's codec never fails to unmarshal a protobuf message: it
// empties the message, remembers why it failed, and returns nil. The
// interceptors checkDecodedUnary and checkDecodedStream, which run before
// authentication and every handler, then answer InvalidArgument in place
// of the call; neither the empty message nor a partly decoded one is ever
// handed on.

// codec is grpc-go's proto codec, except that a request it cannot
// unmarshal is recorded for the interceptors instead of failing the call.
// Every message it records is taken by them: grpc hands each decoded unary
// request to the unary interceptors, and every stream message reaches the
// handler through checkDecodedStream's RecvMsg.
type codec struct {
	base   encoding.CodecV2
	failed sync.Map // proto.Message (a pointer) -> the InvalidArgument status to answer
}

func newCodec() *codec { return &codec{base: encoding.GetCodecV2(grpcproto.Name)} }

func (c *codec) Name() string                           { return c.base.Name() }
func (c *codec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

func (c *codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return c.base.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	b := buf.ReadOnlyData()
	if err := proto.Unmarshal(b, m); err != nil {
		proto.Reset(m) // nothing partly decoded survives, even by mistake
		c.failed.Store(m, malformed(m.ProtoReflect().Descriptor(), b, err))
		return nil
	}
	return nil
}

// take returns the refusal recorded for m, if its unmarshal failed, and
// forgets it.
func (c *codec) take(m any) error {
	if _, ok := m.(proto.Message); !ok {
		return nil // never recorded (and maybe not a valid map key)
	}
	if err, ok := c.failed.LoadAndDelete(m); ok {
		return err.(error)
	}
	return nil
}

// checkDecodedUnary answers a request that failed to unmarshal.
func checkDecodedUnary(c *codec) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := c.take(req); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// checkDecodedStream makes RecvMsg fail with the refusal of a message that
// failed to unmarshal; a handler returns that error, as it does any other.
func checkDecodedStream(c *codec) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &decodedStream{ServerStream: ss, codec: c})
	}
}

type decodedStream struct {
	grpc.ServerStream
	codec *codec
}

func (s *decodedStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if bad := s.codec.take(m); bad != nil {
		return bad
	}
	return err
}

// malformed is the refusal of b, which failed to unmarshal as md with err.
// It names the offending field when the failure is a string that is not
// valid UTF-8.
func malformed(md protoreflect.MessageDescriptor, b []byte, err error) error {
	const prefix = "request is not valid protobuf: "
	field, ok := invalidUTF8(md, b, "", 0)
	if !ok {
		// protobuf-go's "proto:" is followed by a space or, at random, a
		// non-breaking one.
		reason := strings.TrimLeft(strings.TrimPrefix(err.Error(), "proto:"), " \u00a0")
		return status.Error(codes.InvalidArgument, prefix+reason)
	}
	const desc = "contains invalid UTF-8"
	msg := fmt.Sprintf("%sstring field %s %s", prefix, field, desc)
	st, serr := status.New(codes.InvalidArgument, msg).WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: desc}},
	})
	if serr != nil {
		return status.Error(codes.InvalidArgument, msg)
	}
	return st.Err()
}

// invalidUTF8 walks b, the wire form of a message of type md, for the first
// string field protobuf-go refuses as invalid UTF-8 and returns its path
// AIP-style ("lines[0].sku_id"; a map field by its name alone). It reads
// fields as protobuf-go does: one whose wire type does not match is an
// unknown field, and so is one the descriptor lacks. It gives up (false) on
// bytes it cannot parse and beyond protobuf-go's recursion limit.
func invalidUTF8(md protoreflect.MessageDescriptor, b []byte, prefix string, depth int) (string, bool) {
	if depth > protowire.DefaultRecursionLimit {
		return "", false
	}
	var index map[protowire.Number]int // next index of each repeated field
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", false
		}
		b = b[n:]
		fd := md.Fields().ByNumber(num)
		if fd == nil || typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return "", false
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return "", false
		}
		b = b[n:]
		path := prefix + string(fd.Name())
		switch {
		case fd.IsMap():
			if _, bad := invalidUTF8(fd.Message(), v, "", depth+1); bad {
				return path, true
			}
			continue
		case fd.IsList():
			if index == nil {
				index = map[protowire.Number]int{}
			}
			path += "[" + strconv.Itoa(index[num]) + "]"
			index[num]++
		}
		switch fd.Kind() {
		case protoreflect.StringKind:
			if enforcesUTF8(fd) && !utf8.Valid(v) {
				return path, true
			}
		case protoreflect.MessageKind:
			if p, bad := invalidUTF8(fd.Message(), v, path+".", depth+1); bad {
				return p, true
			}
		}
	}
	return "", false
}

// enforcesUTF8 reports whether protobuf-go validates fd's strings: proto3
// strings, and those of editions files that ask for it.
func enforcesUTF8(fd protoreflect.FieldDescriptor) bool {
	if fd.Syntax() == protoreflect.Editions {
		if e, ok := fd.(interface{ EnforceUTF8() bool }); ok {
			return e.EnforceUTF8()
		}
	}
	return fd.Syntax() == protoreflect.Proto3
}
