package domain

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNotPlaced: a command for an order that was never placed.
var ErrNotPlaced = errors.New("order not placed")

// Violation names one bad request field, AIP-style ("lines[0].quantity").
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

// InvalidError is bad input: every violated field with why.
type InvalidError struct {
	Violations []Violation
}

func (e *InvalidError) Error() string {
	parts := make([]string, 0, len(e.Violations))
	for _, v := range e.Violations {
		parts = append(parts, v.Field+": "+v.Description)
	}
	return "invalid order: " + strings.Join(parts, "; ")
}

// PreconditionError is a command the order's state forbids.
type PreconditionError struct {
	// Reason is a stable UPPER_SNAKE_CASE code: ORDER_SHIPPED, ORDER_REJECTED, …
	Reason  string
	Message string
}

func (e *PreconditionError) Error() string { return e.Message }

// Precondition reasons.
const (
	ReasonShipped   = "ORDER_SHIPPED"
	ReasonRejected  = "ORDER_REJECTED"
	ReasonCancelled = "ORDER_CANCELLED"
	ReasonPending   = "ORDER_PENDING"
	ReasonUnknown   = "UNKNOWN_PART"
)
