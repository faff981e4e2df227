package domain_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/services/catalog/domain"
)

var (
	t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 = t0.Add(time.Minute)
	t2 = t0.Add(2 * time.Minute)
)

// scenario is one given/when/then case of an aggregate.
type scenario[C any] struct {
	name  string
	given []proto.Message
	when  C
	then  []proto.Message // nil with err == nil: decided nothing
	err   error           // matched with matchErr
}

func runScenarios[S, C any](t *testing.T, d es.Decider[S, C], id string, cases []scenario[C]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := d.GivenWhenThen(id, tc.given, tc.when)
			matchErr(t, err, tc.err)
			if err != nil && len(got) > 0 {
				t.Fatalf("refused with events %v", got)
			}
			if !slices.EqualFunc(tc.then, got, proto.Equal) {
				t.Fatalf("events:\n got  %s\n want %s", show(got), show(tc.then))
			}
		})
	}
}

// matchErr compares validation errors by the fields they name, stock
// shortages by value, and the rest with domain.IsA (rule errors by reason,
// missing or existing resources by resource and id).
func matchErr(t *testing.T, got, want error) {
	t.Helper()
	switch w := want.(type) {
	case nil:
		if got != nil {
			t.Fatalf("err = %v, want none", got)
		}
	case *domain.ValidationError:
		var g *domain.ValidationError
		if !errors.As(got, &g) {
			t.Fatalf("err = %v, want a validation error", got)
		}
		if gf, wf := fields(g), fields(w); !slices.Equal(gf, wf) {
			t.Fatalf("violations on %v (%v), want %v", gf, got, wf)
		}
	case *domain.InsufficientStockError:
		var g *domain.InsufficientStockError
		if !errors.As(got, &g) || *g != *w {
			t.Fatalf("err = %#v, want %#v", got, w)
		}
	default:
		if !domain.IsA(got, want) {
			t.Fatalf("err = %v, want %v", got, want)
		}
	}
}

func fields(e *domain.ValidationError) []string {
	var out []string
	for _, v := range e.Violations {
		out = append(out, v.Field)
	}
	return out
}

// invalid builds the expected validation error naming fields.
func invalid(fields ...string) *domain.ValidationError {
	e := &domain.ValidationError{}
	for _, f := range fields {
		e.Violations = append(e.Violations, domain.Violation{Field: f})
	}
	return e
}

func show(ms []proto.Message) string {
	out := "["
	for _, m := range ms {
		out += string(m.ProtoReflect().Descriptor().Name()) + "{" + prototext.MarshalOptions{}.Format(m) + "} "
	}
	return out + "]"
}
