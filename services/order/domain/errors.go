package domain

import (
	"errors"

	"github.com/custody/custody/pkg/fault"
)

// ErrNotPlaced: a command for an order that was never placed.
var ErrNotPlaced = errors.New("order not placed")

// The failure vocabulary every Custody domain shares (pkg/fault), named
// here so that the order's rules read in its own terms. Bad input is a
// *fault.InvalidError.
type (
	// Violations accumulates violations; the zero value is ready to use.
	Violations = fault.Violations
	// PreconditionError is a command the order's state forbids.
	PreconditionError = fault.PreconditionError
)

// Precondition reasons (PreconditionError.Reason).
const (
	ReasonShipped   = "ORDER_SHIPPED"
	ReasonRejected  = "ORDER_REJECTED"
	ReasonCancelled = "ORDER_CANCELLED"
	ReasonPending   = "ORDER_PENDING"
	// ReasonBuyerErased: the buyer's personal data was erased; it places
	// no new order.
	ReasonBuyerErased = "BUYER_ERASED"
	ReasonUnknown     = "UNKNOWN_PART"
	// ReasonPartCancelled: the part (or the part of the line) named was
	// already cancelled.
	ReasonPartCancelled = "PART_CANCELLED"
	// ReasonOutOfStock: PlaceOrder asked for more units than the catalog
	// has said it has; nothing is stored.
	ReasonOutOfStock = "OUT_OF_STOCK"
	// ReasonProductArchived: PlaceOrder named a SKU of a product its
	// vendor archived; nothing is stored.
	ReasonProductArchived = "PRODUCT_ARCHIVED"
)
