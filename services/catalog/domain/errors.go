package domain

import (
	"fmt"
	"strings"
)

// NotFoundError: the command names a resource that does not exist.
type NotFoundError struct {
	Resource string // "vendor", "product", "sku", "link", "session"
	ID       string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %q not found", e.Resource, e.ID) }

// Is lets errors.Is(err, &NotFoundError{Resource: "sku"}) match any SKU.
func (e *NotFoundError) Is(target error) bool {
	t, ok := target.(*NotFoundError)
	return ok && t.Resource == e.Resource && (t.ID == "" || t.ID == e.ID)
}

// ExistsError: the resource a command would create is already there
// (created by another request).
type ExistsError struct {
	Resource string
	ID       string
}

func (e *ExistsError) Error() string { return fmt.Sprintf("%s %q already exists", e.Resource, e.ID) }

// Is matches like NotFoundError.Is.
func (e *ExistsError) Is(target error) bool {
	t, ok := target.(*ExistsError)
	return ok && t.Resource == e.Resource && (t.ID == "" || t.ID == e.ID)
}

// RuleError: the aggregate's state forbids the command. Reason is a stable
// UPPER_SNAKE_CASE code; errors.Is matches on it, so the sentinels below
// work whatever the message.
type RuleError struct {
	Reason  string
	Message string
}

func (e *RuleError) Error() string { return e.Message }

// Is matches another RuleError with the same reason.
func (e *RuleError) Is(target error) bool {
	t, ok := target.(*RuleError)
	return ok && t.Reason == e.Reason
}

// Rule-error sentinels, for errors.Is.
var (
	ErrStockBelowReserved  = &RuleError{Reason: "STOCK_BELOW_RESERVED", Message: "stock cannot drop below what is reserved"}
	ErrSessionEnded        = &RuleError{Reason: "SESSION_ENDED", Message: "the live session has ended"}
	ErrAlreadyPinned       = &RuleError{Reason: "PRODUCT_ALREADY_PINNED", Message: "the product is already pinned"}
	ErrNotPinned           = &RuleError{Reason: "PRODUCT_NOT_PINNED", Message: "the product is not pinned"}
	ErrReservationCanceled = &RuleError{Reason: "RESERVATION_CANCELLED", Message: "the order's reservation was cancelled"}
	ErrReservationClosed   = &RuleError{Reason: "RESERVATION_CLOSED", Message: "the order's reservation is already decided"}
	ErrNoHold              = &RuleError{Reason: "NO_HOLD", Message: "no stock is held for the order"}
)

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

// Violation is one invalid field, named as in the API request
// ("skus[1].price.currency_code").
type Violation struct {
	Field       string
	Description string
}

// ValidationError: a command breaks an invariant of its input.
type ValidationError struct {
	Violations []Violation
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Field + ": " + v.Description
	}
	return "invalid: " + strings.Join(parts, "; ")
}

// violations accumulates Violations; err is nil when there are none.
type violations []Violation

func (v *violations) add(field, format string, args ...any) {
	*v = append(*v, Violation{Field: field, Description: fmt.Sprintf(format, args...)})
}

func (v violations) err() error {
	if len(v) == 0 {
		return nil
	}
	return &ValidationError{Violations: v}
}
