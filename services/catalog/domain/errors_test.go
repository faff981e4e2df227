package domain_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/services/catalog/domain"
)

func TestIsA(t *testing.T) {
	shipped := fault.Precondition("NO_HOLD", "product p1: order o1 holds 1 of p1-a")
	cases := []struct {
		name      string
		err, kind error
		want      bool
	}{
		{"a rule error by its reason, whatever the message", fmt.Errorf("wrapped: %w", shipped), domain.ErrNoHold, true},
		{"another reason", shipped, domain.ErrSessionEnded, false},
		{"any missing sku", &domain.NotFoundError{Resource: "sku", ID: "p1-a"}, &domain.NotFoundError{Resource: "sku"}, true},
		{"that missing sku", &domain.NotFoundError{Resource: "sku", ID: "p1-a"}, &domain.NotFoundError{Resource: "sku", ID: "p1-a"}, true},
		{"another missing sku", &domain.NotFoundError{Resource: "sku", ID: "p1-a"}, &domain.NotFoundError{Resource: "sku", ID: "p1-b"}, false},
		{"a missing product is not a missing sku", &domain.NotFoundError{Resource: "product", ID: "p1"}, &domain.NotFoundError{Resource: "sku"}, false},
		{"an existing vendor", &domain.ExistsError{Resource: "vendor", ID: "v1"}, &domain.ExistsError{Resource: "vendor", ID: "v1"}, true},
		{"an existing link is not an existing vendor", &domain.ExistsError{Resource: "link", ID: "v1"}, &domain.ExistsError{Resource: "vendor"}, false},
		{"a kind of error not here", fmt.Errorf("x: %w", errors.ErrUnsupported), errors.ErrUnsupported, true},
		{"no error", nil, domain.ErrNoHold, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := domain.IsA(tc.err, tc.kind); got != tc.want {
				t.Fatalf("IsA(%v, %v) = %v, want %v", tc.err, tc.kind, got, tc.want)
			}
		})
	}
}
