package domain

import (
	"errors"
	"fmt"

	"github.com/custody/custody/pkg/fault"
)

// Sentinel errors.
var (
	// ErrNotRequested: a command for a fulfilment that was never requested.
	ErrNotRequested = errors.New("fulfilment not requested")
	// ErrUnknownTracking: no shipment of the fulfilment uses the tracking
	// number (a scan for a number nobody shipped with).
	ErrUnknownTracking = errors.New("unknown tracking number")
	// ErrShipmentRace: another shipment took the shipment id this command
	// was prepared for; the caller prepares it again.
	ErrShipmentRace = errors.New("another shipment was recorded meanwhile")
)

// The failure vocabulary every service shares (pkg/fault), named here so
// that the domain's call sites read as before: bad input is an
// *InvalidError with AIP-style field paths
// ("packages[0].lines[1].quantity"), a forbidden transition a
// *PreconditionError with one of the Reason codes below.
type (
	Violations        = fault.Violations
	InvalidError      = fault.InvalidError
	PreconditionError = fault.PreconditionError
)

// Precondition reasons.
const (
	ReasonCancelled    = "FULFILMENT_CANCELLED"
	ReasonShipped      = "FULFILMENT_SHIPPED"
	ReasonNotShipped   = "FULFILMENT_NOT_SHIPPED"
	ReasonTooMany      = "TOO_MANY_SHIPMENTS"
	ReasonHistoryFull  = "TRACKING_HISTORY_FULL"
	ReasonOrderInvalid = "ORDER_INVALID"
)

// TrackingInUseError: the carrier's tracking number is already used by
// another shipment (gRPC AlreadyExists).
type TrackingInUseError struct {
	Carrier, TrackingNumber string
	// FulfilmentID and ShipmentID use it; SameFulfilment tells whether that
	// is the fulfilment of the refused command.
	FulfilmentID, ShipmentID string
	SameFulfilment           bool
}

func (e *TrackingInUseError) Error() string {
	if e.SameFulfilment {
		return fmt.Sprintf("%s tracking number %s is already used by shipment %s of this fulfilment", e.Carrier, e.TrackingNumber, e.ShipmentID)
	}
	return fmt.Sprintf("%s tracking number %s is already used by another fulfilment", e.Carrier, e.TrackingNumber)
}
