package domain

import (
	"fmt"
	"strings"
)

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
	return "invalid request: " + strings.Join(parts, "; ")
}

// PreconditionError is a command the state (of the claim or of the custody
// record) forbids.
type PreconditionError struct {
	// Reason is a stable UPPER_SNAKE_CASE code (see the Reason* constants).
	Reason  string
	Message string
}

func (e *PreconditionError) Error() string { return e.Message }

func precondition(reason, format string, args ...any) error {
	return &PreconditionError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Precondition reasons.
const (
	ReasonOrderCancelled     = "ORDER_CANCELLED"
	ReasonNotShipped         = "NOT_SHIPPED"
	ReasonNotDelivered       = "NOT_DELIVERED"
	ReasonTooEarly           = "CLAIM_TOO_EARLY"
	ReasonWindowClosed       = "CLAIM_WINDOW_CLOSED"
	ReasonClaimAlreadyOpen   = "CLAIM_ALREADY_OPEN"
	ReasonLineRefunded       = "LINE_FULLY_REFUNDED"
	ReasonClaimClosed        = "CLAIM_CLOSED"
	ReasonWrongState         = "CLAIM_STATE_FORBIDS"
	ReasonRefundExceeds      = "REFUND_EXCEEDS_CAPTURED"
	ReasonReturnNotPossible  = "RETURN_NOT_POSSIBLE"
	ReasonReturnInTransit    = "RETURN_IN_TRANSIT"
	ReasonReturnNotExpected  = "RETURN_NOT_AUTHORISED"
	ReasonNotClaimsAggregate = "NOT_A_CLAIM"
)

// NotFoundError: the resource (an order the trust service has not seen
// confirmed, a claim) does not exist.
type NotFoundError struct {
	Resource string // "order", "claim"
	ID       string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %q not found", e.Resource, e.ID) }
