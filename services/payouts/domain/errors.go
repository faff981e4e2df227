package domain

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors.
var (
	// ErrNotCaptured: a command about an order whose payment the ledger
	// has not captured (OrderConfirmed not seen yet). Retryable.
	ErrNotCaptured = errors.New("order not captured in the ledger")
	// ErrTooEarly: a deadline command arrived before its moment (the
	// window or reserve hold has not passed by the command's clock).
	// Retryable.
	ErrTooEarly = errors.New("too early")
	// ErrUnbalanced: a transaction would not sum to zero. A bug, never a
	// user error; nothing is written.
	ErrUnbalanced = errors.New("unbalanced transaction")
)

// UnknownPartError: the order has no part for the vendor an event names.
type UnknownPartError struct {
	OrderID, VendorID string
}

func (e *UnknownPartError) Error() string {
	return fmt.Sprintf("order %s has no part for vendor %s", e.OrderID, e.VendorID)
}

// Violation names one bad field, AIP-style ("lines[2].line_total").
type Violation struct {
	Field       string
	Description string
}

// Violations accumulates violations; the zero value is ready to use.
type Violations []Violation

// Add records a violation.
func (v *Violations) Add(field, format string, args ...any) {
	*v = append(*v, Violation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// Err is nil without violations, else an *InvalidError.
func (v Violations) Err() error {
	if len(v) == 0 {
		return nil
	}
	return &InvalidError{Violations: v}
}

// InvalidError is input that cannot be booked: a malformed upstream event
// or a bad request.
type InvalidError struct {
	Violations []Violation
}

func (e *InvalidError) Error() string {
	parts := make([]string, 0, len(e.Violations))
	for _, v := range e.Violations {
		parts = append(parts, v.Field+": "+v.Description)
	}
	return "invalid: " + strings.Join(parts, "; ")
}
