package estest_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/es/estest"
	"github.com/custody/custody/pkg/fault"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// ShortError is a typed refusal, compared field by field.
type ShortError struct{ Want, Have int64 }

func (e *ShortError) Error() string { return fmt.Sprintf("want %d, have %d", e.Want, e.Have) }

var errClosed = errors.New("closed")

// A stock counter: Int64Value(+n) adds, Int64Value(-n) takes.
var counter = es.Decider[int64, int64]{
	Aggregate: "sku",
	Initial:   func(string) int64 { return 0 },
	Decide: func(s, take int64) ([]proto.Message, error) {
		switch {
		case take < 0:
			var v fault.Violations
			v.Add("take", "must not be negative")
			return nil, v.Err()
		case take > s:
			return nil, &ShortError{Want: take, Have: s}
		case take == 0:
			return nil, nil
		}
		return []proto.Message{wrapperspb.Int64(-take)}, nil
	},
	Evolve: func(s int64, e proto.Message) int64 { return s + e.(*wrapperspb.Int64Value).GetValue() },
}

func TestRun(t *testing.T) {
	stocked := []proto.Message{wrapperspb.Int64(5)}
	estest.Run(t, counter, "s1", []estest.Case[int64]{
		{Name: "take what is there", Given: stocked, When: 5, Then: []proto.Message{wrapperspb.Int64(-5)}},
		{Name: "take nothing decides nothing", Given: stocked, When: 0},
		{Name: "take more than there is", Given: stocked, When: 6, Err: &ShortError{Want: 6, Have: 5}},
		{Name: "take a negative amount", When: -1, Err: estest.Invalid("take")},
	})
}

func TestMatch(t *testing.T) {
	var two fault.Violations
	two.Add("a", "bad")
	two.Add("b", "bad")
	cases := []struct {
		name      string
		got, want error
		match     bool
	}{
		{"no error", nil, nil, true},
		{"an error where none was expected", errClosed, nil, false},
		{"no error where one was expected", nil, errClosed, false},
		{"the same fields", fmt.Errorf("w: %w", two.Err()), estest.Invalid("a", "b"), true},
		{"fewer fields", two.Err(), estest.Invalid("a"), false},
		{"fields in another order", two.Err(), estest.Invalid("b", "a"), false},
		{"not invalid", errClosed, estest.Invalid("a"), false},
		{"a precondition by reason", fault.Precondition("NO_HOLD", "order o1 holds nothing"), estest.Precondition("NO_HOLD"), true},
		{"another reason", fault.Precondition("NO_HOLD", "x"), estest.Precondition("CLOSED"), false},
		{"any missing sku", &fault.NotFoundError{Resource: "sku", ID: "p1-a"}, &fault.NotFoundError{Resource: "sku"}, true},
		{"another missing sku", &fault.NotFoundError{Resource: "sku", ID: "p1-a"}, &fault.NotFoundError{Resource: "sku", ID: "p1-b"}, false},
		{"an existing vendor", &fault.ExistsError{Resource: "vendor", ID: "v1"}, &fault.ExistsError{Resource: "vendor", ID: "v1"}, true},
		{"a typed error, equal", fmt.Errorf("w: %w", &ShortError{Want: 2, Have: 1}), &ShortError{Want: 2, Have: 1}, true},
		{"a typed error, not equal", &ShortError{Want: 2, Have: 1}, &ShortError{Want: 2, Have: 0}, false},
		{"a sentinel", fmt.Errorf("w: %w", errClosed), errClosed, true},
		{"another sentinel with the same text", errors.New("closed"), errClosed, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := estest.Match(tc.got, tc.want); got != tc.match {
				t.Fatalf("Match(%v, %v) = %v, want %v", tc.got, tc.want, got, tc.match)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	if got := estest.Format(nil); got != "  (none)" {
		t.Errorf("Format(nil) = %q", got)
	}
	// prototext varies its spacing on purpose: compare without it.
	if got := strings.Join(strings.Fields(estest.Format([]proto.Message{wrapperspb.Int64(-5)})), ""); got != "Int64Value{value:-5}" {
		t.Errorf("Format = %q", got)
	}
}

func TestMissingSubject(t *testing.T) {
	addr := &typev1.Address{RecipientName: "Ada", AddressLines: []string{"1 Main St"}, CountryCode: "DE"}
	cases := []struct {
		name    string
		event   proto.Message
		missing bool
	}{
		{"names its buyer", &orderv1.OrderAddressChanged{OrderId: "o1", ShippingAddress: addr, BuyerId: "b1"}, false},
		{"leaves its buyer empty", &orderv1.OrderAddressChanged{OrderId: "o1", ShippingAddress: addr}, true},
		{"empty even without personal values", &orderv1.OrderAddressChanged{OrderId: "o1"}, true},
		{"a type without a data subject", &orderv1.OrderDelivered{OrderId: "o1"}, false},
		{"not an event of ours", wrapperspb.Int64(1), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			field, missing := estest.MissingSubject(tc.event)
			if missing != tc.missing || (missing && field != "buyer_id") {
				t.Errorf("MissingSubject = %q, %v; want missing %v", field, missing, tc.missing)
			}
		})
	}
}
