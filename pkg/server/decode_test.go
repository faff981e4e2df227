package server_test

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/server"
	"github.com/custody/custody/pkg/server/servertest"
)

// Bytes that are not valid protobuf, sent by a real client over loopback,
// are bad input: InvalidArgument naming the problem (and the field, for a
// string that is not UTF-8), never Internal, and never a handler's answer.
func TestMalformedRequests(t *testing.T) {
	e := start(t, server.Config{})
	authed, anon := e.conn(t, e.token), e.conn(t, "")

	unary := func(conn *grpc.ClientConn, opt grpc.CallOption) error {
		// Echo would answer OK with the value: it must not run.
		return conn.Invoke(t.Context(), "/"+svcA+"/Echo", wrapperspb.String("x"), new(wrapperspb.StringValue), opt)
	}
	stream := func(conn *grpc.ClientConn, opt grpc.CallOption) error {
		s, err := conn.NewStream(t.Context(), &grpc.StreamDesc{ServerStreams: true}, "/"+svcA+"/Watch", opt)
		if err != nil {
			return err
		}
		if err := s.SendMsg(wrapperspb.String("x")); err != nil {
			return err
		}
		if err := s.CloseSend(); err != nil {
			return err
		}
		return s.RecvMsg(new(wrapperspb.StringValue))
	}
	bidi := func(conn *grpc.ClientConn, opt grpc.CallOption) error { // reflection: a bidirectional stream
		s, err := conn.NewStream(t.Context(), &grpc.StreamDesc{ClientStreams: true, ServerStreams: true},
			reflectionpb.ServerReflection_ServerReflectionInfo_FullMethodName, opt)
		if err != nil {
			return err
		}
		if err := s.SendMsg(&reflectionpb.ServerReflectionRequest{Host: "x", MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
			return err
		}
		return s.RecvMsg(new(reflectionpb.ServerReflectionResponse))
	}

	const utf8Msg = "request is not valid protobuf: string field value contains invalid UTF-8"
	const wireMsg = "request is not valid protobuf: cannot parse invalid wire-format data"
	tests := []struct {
		name  string
		call  func() error
		code  codes.Code
		msg   string
		field string // the field violation, if any
	}{
		{"unary invalid UTF-8", func() error { return unary(authed, servertest.InvalidUTF8("value")) }, codes.InvalidArgument, utf8Msg, "value"},
		{"unary truncated", func() error { return unary(authed, servertest.Truncated()) }, codes.InvalidArgument, wireMsg, ""},
		// A unary request is decoded before any interceptor runs: it is
		// refused as malformed before its token is looked at.
		{"unary invalid UTF-8 without a token", func() error { return unary(anon, servertest.InvalidUTF8("value")) }, codes.InvalidArgument, utf8Msg, "value"},
		{"stream invalid UTF-8", func() error { return stream(authed, servertest.InvalidUTF8("value")) }, codes.InvalidArgument, utf8Msg, "value"},
		{"stream truncated", func() error { return stream(authed, servertest.Truncated()) }, codes.InvalidArgument, wireMsg, ""},
		{"stream invalid UTF-8 without a token", func() error { return stream(anon, servertest.InvalidUTF8("value")) }, codes.Unauthenticated, "", ""},
		{"bidi stream invalid UTF-8", func() error { return bidi(anon, servertest.InvalidUTF8("host")) }, codes.InvalidArgument,
			"request is not valid protobuf: string field host contains invalid UTF-8", "host"},
		{"bidi stream truncated", func() error { return bidi(anon, servertest.Truncated()) }, codes.InvalidArgument, wireMsg, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if status.Code(err) != tt.code || !strings.Contains(status.Convert(err).Message(), tt.msg) {
				t.Fatalf("got %v, want %v %q", err, tt.code, tt.msg)
			}
			var fields []apierr.FieldViolation
			if tt.field != "" {
				fields = []apierr.FieldViolation{{Field: tt.field, Description: "contains invalid UTF-8"}}
			}
			if got := apierr.FieldViolations(err); !slices.Equal(got, fields) {
				t.Fatalf("field violations %v, want %v", got, fields)
			}
		})
	}

	// The connection and the server carry on; the refusals were logged.
	var out wrapperspb.StringValue
	if err := authed.Invoke(t.Context(), "/"+svcA+"/Echo", wrapperspb.String("y"), &out); err != nil || out.GetValue() != "alice:y" {
		t.Fatalf("Echo after malformed requests: %q, %v", out.GetValue(), err)
	}
	if logs := e.logs.String(); !strings.Contains(logs, `"code":"InvalidArgument"`) || !strings.Contains(logs, utf8Msg) {
		t.Errorf("refusals not logged:\n%s", logs)
	}
}

// The helper refuses to build a request it cannot make bad, so a test
// naming the wrong field fails instead of passing for the wrong reason.
func TestInvalidUTF8NeedsAStringField(t *testing.T) {
	e := start(t, server.Config{})
	conn := e.conn(t, e.token)
	for _, field := range []string{"nope", ""} {
		err := conn.Invoke(t.Context(), "/"+svcA+"/Echo", wrapperspb.String("x"), new(wrapperspb.StringValue), servertest.InvalidUTF8(field))
		if status.Code(err) == codes.InvalidArgument || !strings.Contains(err.Error(), "has no string field") {
			t.Errorf("InvalidUTF8(%q): %v, want a client-side error", field, err)
		}
	}
	err := conn.Invoke(t.Context(), "/"+svcA+"/Echo", new(wrapperspb.StringValue), new(wrapperspb.StringValue), servertest.Truncated())
	if err == nil || !strings.Contains(err.Error(), "cannot be truncated") {
		t.Errorf("Truncated() of an empty request: %v, want a client-side error", err)
	}
}
