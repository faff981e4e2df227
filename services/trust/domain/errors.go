package domain

import "github.com/custody/custody/pkg/fault"

// The failures the trust domain returns are Custody's shared vocabulary
// (pkg/fault), mapped to gRPC statuses once, at the edge. The aliases keep
// the call sites in this package short.
type (
	// Violations accumulates violations, AIP-style ("lines[0].quantity");
	// the zero value is ready to use. Their Err is a *fault.InvalidError.
	Violations = fault.Violations
	// PreconditionError is a command the state (of the claim or of the
	// custody record) forbids; its Reason is one of the Reason* constants.
	PreconditionError = fault.PreconditionError
	// NotFoundError: the resource (an order the trust service has not seen
	// confirmed, a claim) does not exist.
	NotFoundError = fault.NotFoundError
)

// Precondition reasons.
const (
	ReasonOrderCancelled     = "ORDER_CANCELLED"
	ReasonNotShipped         = "NOT_SHIPPED"
	ReasonNotDelivered       = "NOT_DELIVERED"
	ReasonTooEarly           = "CLAIM_TOO_EARLY"
	ReasonWindowClosed       = "CLAIM_WINDOW_CLOSED"
	ReasonClaimAlreadyOpen   = "CLAIM_ALREADY_OPEN"
	ReasonUnitsCancelled     = "UNITS_CANCELLED"
	ReasonUnitsNotHeld       = "UNITS_NOT_HELD"
	ReasonLineRefunded       = "LINE_FULLY_REFUNDED"
	ReasonClaimClosed        = "CLAIM_CLOSED"
	ReasonWrongState         = "CLAIM_STATE_FORBIDS"
	ReasonRefundExceeds      = "REFUND_EXCEEDS_CAPTURED"
	ReasonReturnNotPossible  = "RETURN_NOT_POSSIBLE"
	ReasonReturnInTransit    = "RETURN_IN_TRANSIT"
	ReasonReturnNotExpected  = "RETURN_NOT_AUTHORISED"
	ReasonNotClaimsAggregate = "NOT_A_CLAIM"
)
