package domain

import (
	"errors"
	"fmt"
	"strings"
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

// Violation names one bad request field, AIP-style ("packages[0].lines[1].quantity").
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
	return "invalid fulfilment request: " + strings.Join(parts, "; ")
}

// PreconditionError is a command the fulfilment's state forbids.
type PreconditionError struct {
	// Reason is a stable UPPER_SNAKE_CASE code (see the Reason constants).
	Reason  string
	Message string
}

func (e *PreconditionError) Error() string { return e.Message }

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
