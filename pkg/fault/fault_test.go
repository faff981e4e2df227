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
