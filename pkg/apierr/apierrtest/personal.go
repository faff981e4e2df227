package apierrtest

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/custody/custody/pkg/apierr"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// personalValue is what KeepsPersonalOut writes into personal fields: a
// name, far longer than any field takes.
var personalValue = strings.Repeat("Ada Lovelace ", 2000)

// KeepsPersonalOut checks that a validator refuses personal data it cannot
// take without repeating it: the refusal names the field, never the value.
// The error text is logged (the gRPC call log) and answered, so it must not
// carry a name, phone or street into the logs.
//
// It fills every string field of req marked (custody.type.v1.personal), in
// req and in the messages req holds (set them in req first: only present
// messages and list elements are filled), and the top-level string fields
// named in also (personal data in request-only fields), with an over-long
// name; validate must refuse the copy with InvalidArgument naming each of
// those fields, and neither its error, nor the status toStatus makes of it
// (message and details), may contain the value.
func KeepsPersonalOut[M proto.Message](t *testing.T, req M, validate func(M) error, toStatus func(context.Context, error) error, also ...protoreflect.Name) {
	t.Helper()
	bad := proto.Clone(req).(M)
	fields := fillPersonal(bad.ProtoReflect(), "", also)
	if len(fields) == 0 {
		t.Fatalf("%T has no personal field set to fill", req)
	}
	err := validate(bad)
	if err == nil {
		t.Fatalf("accepted over-long personal values in %s", strings.Join(fields, ", "))
	}
	st := status.Convert(toStatus(t.Context(), err))
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("refused with %v (%v), want InvalidArgument", st.Code(), err)
	}
	named := make([]string, 0, len(fields))
	for _, v := range apierr.FieldViolations(st.Err()) {
		named = append(named, v.Field)
	}
	for _, f := range fields {
		if !slices.Contains(named, f) {
			t.Errorf("no field violation names %s (violations: %v)", f, named)
		}
	}
	echo := strings.TrimSpace(personalValue[:len("Ada Lovelace ")*2])
	for what, text := range map[string]string{"the error": err.Error(), "the status message": st.Message(), "the status details": details(st)} {
		if strings.Contains(text, echo) {
			t.Errorf("%s repeats the personal value", what)
		}
	}
}

func details(st *status.Status) string {
	var b strings.Builder
	for _, d := range st.Proto().GetDetails() {
		b.WriteString(prototext.Format(d))
	}
	return b.String()
}

// fillPersonal sets the personal string fields of m (and those named in
// top, at the top level only) to personalValue, recursing into present
// messages, and returns their AIP paths.
func fillPersonal(m protoreflect.Message, prefix string, top []protoreflect.Name) []string {
	var out []string
	fds := m.Descriptor().Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		path := prefix + string(fd.Name())
		switch {
		case fd.Kind() == protoreflect.StringKind && !fd.IsMap():
			marked, _ := proto.GetExtension(fd.Options(), typev1.E_Personal).(bool)
			if !marked && !slices.Contains(top, fd.Name()) {
				continue
			}
			if !fd.IsList() {
				m.Set(fd, protoreflect.ValueOfString(personalValue))
				out = append(out, path)
				continue
			}
			l := m.Mutable(fd).List()
			if l.Len() == 0 {
				l.Append(protoreflect.ValueOfString(""))
			}
			for j := range l.Len() {
				l.Set(j, protoreflect.ValueOfString(personalValue))
				out = append(out, path+"["+strconv.Itoa(j)+"]")
			}
		case fd.Kind() == protoreflect.MessageKind && fd.IsList():
			l := m.Mutable(fd).List()
			for j := range l.Len() {
				out = append(out, fillPersonal(l.Get(j).Message(), path+"["+strconv.Itoa(j)+"].", nil)...)
			}
		case fd.Kind() == protoreflect.MessageKind && !fd.IsMap() && m.Has(fd):
			out = append(out, fillPersonal(m.Mutable(fd).Message(), path+".", nil)...)
		}
	}
	return out
}
