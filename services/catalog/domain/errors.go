package domain

import (
	"fmt"

	"github.com/custody/custody/pkg/fault"
)

// The catalog's failures are the kinds every Custody domain shares
// (pkg/fault), so the gRPC edge and the consumer runtime map them once for
// all services. The names below keep the catalog's call sites readable.
type (
	// NotFoundError: the command names a resource that does not exist
	// ("vendor", "product", "sku", "link", "session").
	NotFoundError = fault.NotFoundError
	// ExistsError: the resource a command would create is already there
	// (created by another request).
	ExistsError = fault.ExistsError
	// RuleError: the aggregate's state forbids the command. Reason is a
	// stable UPPER_SNAKE_CASE code, the same whatever the message.
	RuleError = fault.PreconditionError
	// ValidationError: a command breaks an invariant of its input; each
	// violation names the API request field ("skus[1].price.currency_code").
	ValidationError = fault.InvalidError
)

// Rule-error sentinels: the reasons, with a generic message. The errors the
// aggregates return carry a specific message; match them with IsA.
var (
	ErrStockBelowReserved  = &RuleError{Reason: "STOCK_BELOW_RESERVED", Message: "stock cannot drop below what is reserved"}
	ErrSessionEnded        = &RuleError{Reason: "SESSION_ENDED", Message: "the live session has ended"}
	ErrAlreadyPinned       = &RuleError{Reason: "PRODUCT_ALREADY_PINNED", Message: "the product is already pinned"}
	ErrNotPinned           = &RuleError{Reason: "PRODUCT_NOT_PINNED", Message: "the product is not pinned"}
	ErrReservationCanceled = &RuleError{Reason: "RESERVATION_CANCELLED", Message: "the order's reservation was cancelled"}
	ErrReservationClosed   = &RuleError{Reason: "RESERVATION_CLOSED", Message: "the order's reservation is already decided"}
	ErrNoHold              = &RuleError{Reason: "NO_HOLD", Message: "no stock is held for the order"}
	ErrProductArchived     = &RuleError{Reason: "PRODUCT_ARCHIVED", Message: "the product is archived"}
	ErrTooManySKUs         = &RuleError{Reason: "TOO_MANY_SKUS", Message: "the product has the most SKUs a product may have"}
)

// refuse returns a RuleError with the reason of sentinel and a specific
// message.
func refuse(sentinel *RuleError, format string, args ...any) error {
	return fault.Precondition(sentinel.Reason, format, args...)
}

// IsA reports whether err is a failure like kind (fault.IsA): a RuleError
// with kind's reason, or a NotFoundError or ExistsError of kind's resource
// and, when kind names one, its id — so IsA(err, &NotFoundError{Resource:
// "sku"}) matches any missing SKU. Other kinds are matched with errors.Is.
func IsA(err, kind error) bool { return fault.IsA(err, kind) }

// InsufficientStockError: a hold asked for more units of a SKU than are
// available. It is a FailedPrecondition at the API and the reason of a
// StockReservationFailed in the saga.
type InsufficientStockError struct {
	SkuID     string
	Requested int64
	Available int64
}

func (e *InsufficientStockError) Error() string {
	return fmt.Sprintf("sku %s: %d requested, %d available", e.SkuID, e.Requested, e.Available)
}

// invalid is a ValidationError naming one field.
func invalid(field, format string, args ...any) error {
	var v fault.Violations
	v.Add(field, format, args...)
	return v.Err()
}
