package server

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/typepb"
)

const bad = "\xff\xfe" // no UTF-8 sequence starts with 0xff

// with appends to b m's field name holding v (a string's or a message's bytes).
func with(b []byte, m proto.Message, name string, v []byte) []byte {
	fd := m.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(name))
	b = protowire.AppendTag(b, fd.Number(), protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// entry is a map entry's bytes: key 1, value 2.
func entry(key string, value []byte) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendString(b, key)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendBytes(b, value)
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decode runs b through c into m and returns the refusal the interceptors
// would answer (nil: none).
func decode(t testing.TB, c *codec, m proto.Message, b []byte) error {
	t.Helper()
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, m); err != nil {
		t.Fatalf("codec.Unmarshal failed the call: %v", err)
	}
	return c.take(m)
}

func violations(err error) []string {
	var out []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				out = append(out, fv.GetField())
			}
		}
	}
	return out
}

// A request that does not unmarshal is refused naming the problem, and
// the string that is not UTF-8 by its path, as the edges' validation names
// fields; the message is left empty. What protobuf-go accepts (unknown
// fields, proto2 strings, a mismatched wire type) is let through as it is.
func TestCodecUnmarshal(t *testing.T) {
	str := func(s string) []byte { return []byte(s) }
	typ, fld, opt := &typepb.Type{}, &typepb.Field{}, &typepb.Option{}
	good := marshal(t, &typepb.Type{Name: "ok", Oneofs: []string{"a"}, Fields: []*typepb.Field{{Name: "f"}}})
	field := func(name string) []byte { return with(nil, fld, "name", str(name)) }
	option := func(name string) []byte { return with(nil, opt, "name", str(name)) }
	goodValue := marshal(t, structpb.NewStringValue("x"))
	badInList := with(nil, &structpb.Value{}, "list_value",
		with(with(nil, &structpb.ListValue{}, "values", goodValue), &structpb.ListValue{}, "values", with(nil, &structpb.Value{}, "string_value", str(bad))))
	unknown := protowire.AppendBytes(protowire.AppendTag(slices.Clone(good), 99, protowire.BytesType), str(bad))
	mismatched := protowire.AppendVarint(protowire.AppendTag(slices.Clone(good), 1, protowire.VarintType), 7) // name as a varint

	const utf8 = "request is not valid protobuf: string field "
	tests := []struct {
		name  string
		msg   func() proto.Message
		b     []byte
		text  string // "" when the request is fine
		field string // the field violation, if any
	}{
		{"fine", func() proto.Message { return new(typepb.Type) }, good, "", ""},
		{"top level", func() proto.Message { return new(typepb.Type) }, with(slices.Clone(good), typ, "name", str(bad)), utf8 + "name contains invalid UTF-8", "name"},
		{"repeated string", func() proto.Message { return new(typepb.Type) }, with(slices.Clone(good), typ, "oneofs", str(bad)), utf8 + "oneofs[1] contains invalid UTF-8", "oneofs[1]"},
		{"nested", func() proto.Message { return new(typepb.Type) }, with(slices.Clone(good), typ, "fields", field(bad)), utf8 + "fields[1].name contains invalid UTF-8", "fields[1].name"},
		{"nested twice", func() proto.Message { return new(typepb.Type) },
			with(slices.Clone(good), typ, "fields", with(with(nil, fld, "options", option("ok")), fld, "options", option(bad))),
			utf8 + "fields[1].options[1].name contains invalid UTF-8", "fields[1].options[1].name"},
		{"map key", func() proto.Message { return new(structpb.Struct) }, with(nil, &structpb.Struct{}, "fields", entry(bad, goodValue)), utf8 + "fields contains invalid UTF-8", "fields"},
		{"map value", func() proto.Message { return new(structpb.Struct) }, with(nil, &structpb.Struct{}, "fields", entry("k", badInList)), utf8 + "fields contains invalid UTF-8", "fields"},
		{"truncated", func() proto.Message { return new(typepb.Type) }, good[:len(good)-1], "request is not valid protobuf: cannot parse invalid wire-format data", ""},
		{"truncated after a bad string", func() proto.Message { return new(typepb.Type) }, with(nil, typ, "name", str(bad))[:3], "request is not valid protobuf: cannot parse invalid wire-format data", ""},
		{"unknown field", func() proto.Message { return new(typepb.Type) }, unknown, "", ""},
		{"mismatched wire type", func() proto.Message { return new(typepb.Type) }, mismatched, "", ""},
		{"proto2 string", func() proto.Message { return new(descriptorpb.FileDescriptorProto) }, with(nil, &descriptorpb.FileDescriptorProto{}, "name", str(bad)), "", ""},
	}
	c := newCodec()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.msg()
			err := decode(t, c, m, tt.b)
			if tt.text == "" {
				want := tt.msg()
				if perr := proto.Unmarshal(tt.b, want); perr != nil || err != nil || !proto.Equal(m, want) {
					t.Fatalf("refused %v (protobuf-go: %v), decoded %v, want %v", err, perr, m, want)
				}
				return
			}
			if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != tt.text {
				t.Fatalf("refusal %v, want InvalidArgument %q", err, tt.text)
			}
			var want []string
			if tt.field != "" {
				want = []string{tt.field}
			}
			if got := violations(err); !slices.Equal(got, want) {
				t.Fatalf("field violations %v, want %v", got, want)
			}
			if proto.Size(m) != 0 {
				t.Fatalf("a refused message kept what decoded: %v", m)
			}
			if again := c.take(m); again != nil {
				t.Fatalf("refusal taken twice: %v", again)
			}
		})
	}
}

// Whatever bytes arrive, the codec never fails the call and never panics;
// what protobuf-go accepts is decoded as protobuf-go decodes it, and the
// rest is refused InvalidArgument with an empty message, naming a field
// whenever the failure is a string that is not UTF-8.
func FuzzCodecUnmarshal(f *testing.F) {
	good := marshal(f, &typepb.Type{Name: "t", Oneofs: []string{"o"}, Fields: []*typepb.Field{{Name: "f", Options: []*typepb.Option{{Name: "o"}}}}})
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(with(slices.Clone(good), &typepb.Type{}, "fields", with(nil, &typepb.Field{}, "name", []byte(bad))))
	f.Add(marshal(f, &structpb.Struct{Fields: map[string]*structpb.Value{"k": structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{structpb.NewStringValue("s")}})}}))
	f.Add(with(nil, &structpb.Struct{}, "fields", entry(bad, nil)))
	c := newCodec()
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, newMsg := range []func() proto.Message{
			func() proto.Message { return new(typepb.Type) },
			func() proto.Message { return new(structpb.Struct) },
		} {
			m, want := newMsg(), newMsg()
			perr := proto.Unmarshal(b, want)
			err := decode(t, c, m, b)
			switch {
			case perr == nil && (err != nil || !proto.Equal(m, want)):
				t.Fatalf("%T: refused %v or decoded %v, want %v", m, err, m, want)
			case perr != nil && status.Code(err) != codes.InvalidArgument:
				t.Fatalf("%T: protobuf-go failed (%v), refusal %v", m, perr, err)
			case perr != nil && proto.Size(m) != 0:
				t.Fatalf("%T: a refused message kept what decoded: %v", m, m)
			case perr != nil && strings.Contains(perr.Error(), "UTF-8") && len(violations(err)) != 1:
				t.Fatalf("%T: protobuf-go failed (%v), refusal %v names no field", m, perr, err)
			}
		}
	})
}
