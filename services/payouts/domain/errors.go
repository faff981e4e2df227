package domain

import (
	"errors"
	"fmt"

	"github.com/custody/custody/pkg/fault"
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
	// ErrOverflow: a balance, a batch total or a sum of postings would not
	// fit in int64 minor units. What would overflow is refused, never
	// wrapped: a command decides nothing, a fold applies nothing of the
	// transaction. Match it with fault.IsA; it is FailedPrecondition
	// AMOUNT_OVERFLOW at the edge.
	ErrOverflow = &fault.PreconditionError{Reason: "AMOUNT_OVERFLOW", Message: "an amount would overflow int64 minor units"}
)

// overflow is an ErrOverflow with a specific message.
func overflow(format string, args ...any) error {
	return fault.Precondition(ErrOverflow.Reason, format, args...)
}

// UnknownPartError: the order has no part for the vendor an event names.
type UnknownPartError struct {
	OrderID, VendorID string
}

func (e *UnknownPartError) Error() string {
	return fmt.Sprintf("order %s has no part for vendor %s", e.OrderID, e.VendorID)
}

// The shared failure vocabulary (pkg/fault), named here so that call sites
// read as the domain's: a malformed upstream event or a bad request is an
// *InvalidError naming every offending field, AIP-style
// ("lines[2].line_total").
type (
	Violations   = fault.Violations
	InvalidError = fault.InvalidError
)
