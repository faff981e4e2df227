package fault_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/custody/custody/pkg/fault"
)

func TestPermanent(t *testing.T) {
	base := errors.New("bad payload")
	p := fault.Permanent(base)
	if !fault.IsPermanent(p) || !fault.IsPermanent(fmt.Errorf("handle: %w", p)) || !errors.Is(p, base) {
		t.Errorf("Permanent(%v) = %v: not recognised", base, p)
	}
	if fault.IsPermanent(base) || fault.Permanent(nil) != nil {
		t.Error("plain errors and nil must not be permanent")
	}
}

func TestViolations(t *testing.T) {
	var v fault.Violations
	if v.Err() != nil {
		t.Fatal("no violations must be no error")
	}
	v.Add("lines[0].quantity", "must be > %d", 0)
	v.Add("buyer_id", "required")
	var invalid *fault.InvalidError
	if err := v.Err(); !errors.As(err, &invalid) || len(invalid.Violations) != 2 ||
		err.Error() != "invalid argument: lines[0].quantity: must be > 0; buyer_id: required" {
		t.Fatalf("Err() = %v", err)
	}
}

func TestIsA(t *testing.T) {
	noHold := &fault.PreconditionError{Reason: "NO_HOLD", Message: "no stock is held for the order"}
	shipped := fault.Precondition("NO_HOLD", "product p1: order o1 holds 1 of p1-a")
	cases := []struct {
		name      string
		err, kind error
		want      bool
	}{
		{"a precondition by its reason, whatever the message", fmt.Errorf("wrapped: %w", shipped), noHold, true},
		{"another reason", shipped, &fault.PreconditionError{Reason: "SESSION_ENDED"}, false},
		{"any missing sku", &fault.NotFoundError{Resource: "sku", ID: "p1-a"}, &fault.NotFoundError{Resource: "sku"}, true},
		{"that missing sku", &fault.NotFoundError{Resource: "sku", ID: "p1-a"}, &fault.NotFoundError{Resource: "sku", ID: "p1-a"}, true},
		{"another missing sku", &fault.NotFoundError{Resource: "sku", ID: "p1-a"}, &fault.NotFoundError{Resource: "sku", ID: "p1-b"}, false},
		{"a missing product is not a missing sku", &fault.NotFoundError{Resource: "product", ID: "p1"}, &fault.NotFoundError{Resource: "sku"}, false},
		{"an existing vendor", &fault.ExistsError{Resource: "vendor", ID: "v1"}, &fault.ExistsError{Resource: "vendor", ID: "v1"}, true},
		{"an existing link is not an existing vendor", &fault.ExistsError{Resource: "link", ID: "v1"}, &fault.ExistsError{Resource: "vendor"}, false},
		{"a kind of error not here", fmt.Errorf("x: %w", errors.ErrUnsupported), errors.ErrUnsupported, true},
		{"no error", nil, noHold, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := fault.IsA(tc.err, tc.kind); got != tc.want {
				t.Fatalf("IsA(%v, %v) = %v, want %v", tc.err, tc.kind, got, tc.want)
			}
		})
	}
}
