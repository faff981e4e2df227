// Package estest runs an es.Decider's given/when/then tables, the way every
// aggregate in Custody is tested: given these events, when this command,
// then these events — or this refusal. The tables stay beside each
// aggregate; the runner and the way a refusal is compared live here, once.
package estest

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/fault"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// Case is one scenario of a decider.
type Case[C any] struct {
	Name  string
	Given []proto.Message
	When  C
	// Then are the events When decides, in order; nil with a nil Err: it
	// decides nothing (a repeat, or a command that finds the aggregate
	// where it would take it).
	Then []proto.Message
	// Err is the refusal, compared with Match; nil: none.
	Err error
}

// Run runs each case as a subtest of t: Given is folded onto d's initial
// state of aggregate id and When decided on it. The refusal must match Err
// and come without events, the events must equal Then (proto.Equal, in
// order), and each must name its data subject (WantSubjects).
func Run[S, C any](t *testing.T, d es.Decider[S, C], id string, cases []Case[C]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Helper()
			got, err := d.GivenWhenThen(id, tc.Given, tc.When)
			WantErr(t, err, tc.Err)
			if err != nil && len(got) > 0 {
				t.Fatalf("refused with events:\n%s", Format(got))
			}
			if !slices.EqualFunc(got, tc.Then, proto.Equal) {
				t.Fatalf("events:\ngot:\n%s\nwant:\n%s", Format(got), Format(tc.Then))
			}
			WantSubjects(t, got)
		})
	}
}

// WantErr fails t unless got matches want (see Match).
func WantErr(t testing.TB, got, want error) {
	t.Helper()
	if !Match(got, want) {
		t.Fatalf("err = %v, want %s", got, describe(want))
	}
}

// Match reports whether got is the failure want describes:
//   - nil: no failure;
//   - a *fault.InvalidError: one naming the same fields in the same order
//     (descriptions are prose and not compared; see Invalid);
//   - a *fault.PreconditionError, *fault.NotFoundError or
//     *fault.ExistsError: fault.IsA (the same reason; the same resource
//     and, when want names one, id);
//   - a value of an exported error type, such as a stock shortage: got is
//     it (errors.Is) or holds one of its type equal to it field by field;
//   - any other error, such as a sentinel: errors.Is.
func Match(got, want error) bool {
	if want == nil || got == nil {
		return got == want
	}
	if w, ok := want.(*fault.InvalidError); ok {
		var g *fault.InvalidError
		return errors.As(got, &g) && slices.Equal(fields(g), fields(w))
	}
	if fault.IsA(got, want) {
		return true
	}
	switch want.(type) {
	case *fault.PreconditionError, *fault.NotFoundError, *fault.ExistsError:
		return false
	}
	typ := reflect.TypeOf(want)
	if !exported(typ) {
		return false
	}
	target := reflect.New(typ)
	return errors.As(got, target.Interface()) && reflect.DeepEqual(target.Elem().Interface(), want)
}

// Invalid is the *fault.InvalidError that names fields, in order.
func Invalid(fields ...string) *fault.InvalidError {
	e := &fault.InvalidError{}
	for _, f := range fields {
		e.Violations = append(e.Violations, fault.Violation{Field: f})
	}
	return e
}

// Precondition is the *fault.PreconditionError with reason.
func Precondition(reason string) *fault.PreconditionError {
	return &fault.PreconditionError{Reason: reason}
}

// WantSubjects fails t for each event whose type names a data subject
// (option (custody.type.v1.data_subject) = "buyer:buyer_id") but leaves
// that field empty: its personal fields could not be sealed under anyone's
// key, and the event store refuses it.
func WantSubjects(t testing.TB, events []proto.Message) {
	t.Helper()
	for _, e := range events {
		if field, ok := MissingSubject(e); ok {
			t.Errorf("%s names no data subject: %s is empty", e.ProtoReflect().Descriptor().FullName(), field)
		}
	}
}

// MissingSubject reports whether e's type names a data subject that e
// leaves empty (or names a field it does not have), and that field.
func MissingSubject(e proto.Message) (field string, missing bool) {
	m := e.ProtoReflect()
	subject, _ := proto.GetExtension(m.Descriptor().Options(), typev1.E_DataSubject).(string)
	if subject == "" {
		return "", false
	}
	_, field, _ = strings.Cut(subject, ":")
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(field))
	return field, fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() || m.Get(fd).String() == ""
}

// Format renders events one a line, each as its type and text, for
// failure messages.
func Format(events []proto.Message) string {
	if len(events) == 0 {
		return "  (none)"
	}
	var b strings.Builder
	for i, e := range events {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("  " + string(e.ProtoReflect().Descriptor().Name()) + "{" + prototext.MarshalOptions{}.Format(e) + "}")
	}
	return b.String()
}

func fields(e *fault.InvalidError) []string {
	out := make([]string, 0, len(e.Violations))
	for _, v := range e.Violations {
		out = append(out, v.Field)
	}
	return out
}

func describe(want error) string {
	switch w := want.(type) {
	case nil:
		return "none"
	case *fault.InvalidError:
		return "invalid " + strings.Join(fields(w), ", ")
	case *fault.PreconditionError:
		return "precondition " + w.Reason
	}
	return want.Error()
}

// exported reports whether t, or what it points to, is a named type whose
// name is exported: a domain's typed error, not the unexported type behind
// errors.New and fmt.Errorf, whose values are compared by identity only.
func exported(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	name := t.Name()
	return name != "" && unicode.IsUpper([]rune(name)[0])
}
