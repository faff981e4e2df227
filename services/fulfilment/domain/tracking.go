package domain

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/es"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
)

// Tracking is the state of a carrier's tracking number (stream
// "tracking-<carrier>_<number>"): which shipment claimed it.
type Tracking struct {
	ID             string
	Claimed        bool
	Carrier        string
	TrackingNumber string
	FulfilmentID   string
	ShipmentID     string
	VendorID       string
	OrderID        string
}

// ClaimTracking claims the tracking number for a shipment about to be
// recorded. Replaces, when set, is the shipment id of a stale claim by the
// same fulfilment that the caller has checked was never recorded with this
// number (a ShipFulfilment that claimed and then lost a race): such a claim
// may be taken over. Claims by another fulfilment are never taken over.
type ClaimTracking struct {
	Carrier        string
	TrackingNumber string
	FulfilmentID   string
	ShipmentID     string
	VendorID       string
	OrderID        string
	Replaces       string
}

// DecideTracking decides a claim: the first claim wins; the same claim
// again decides nothing; any other is a *TrackingInUseError.
func DecideTracking(t Tracking, c ClaimTracking) ([]proto.Message, error) {
	if c.Carrier == "" || c.TrackingNumber == "" || c.FulfilmentID == "" || c.ShipmentID == "" {
		return nil, fmt.Errorf("%w: incomplete tracking claim %+v", es.ErrBadCommand, c)
	}
	claimed := &fulfilmentv1.TrackingNumberClaimed{Carrier: c.Carrier, TrackingNumber: c.TrackingNumber,
		FulfilmentId: c.FulfilmentID, ShipmentId: c.ShipmentID, VendorId: c.VendorID, OrderId: c.OrderID}
	switch {
	case !t.Claimed:
		return []proto.Message{claimed}, nil
	case t.FulfilmentID == c.FulfilmentID && t.ShipmentID == c.ShipmentID:
		return nil, nil
	case t.FulfilmentID == c.FulfilmentID && c.Replaces != "" && t.ShipmentID == c.Replaces:
		return []proto.Message{claimed}, nil
	}
	return nil, &TrackingInUseError{Carrier: t.Carrier, TrackingNumber: t.TrackingNumber, FulfilmentID: t.FulfilmentID,
		ShipmentID: t.ShipmentID, SameFulfilment: t.FulfilmentID == c.FulfilmentID}
}

// EvolveTracking applies a TrackingNumberClaimed.
func EvolveTracking(t Tracking, e proto.Message) Tracking {
	if e, ok := e.(*fulfilmentv1.TrackingNumberClaimed); ok {
		t.Claimed = true
		t.Carrier, t.TrackingNumber = e.GetCarrier(), e.GetTrackingNumber()
		t.FulfilmentID, t.ShipmentID, t.VendorID, t.OrderID = e.GetFulfilmentId(), e.GetShipmentId(), e.GetVendorId(), e.GetOrderId()
	}
	return t
}

// Trackings is the tracking aggregate.
var Trackings = es.Decider[Tracking, ClaimTracking]{
	Aggregate: "tracking",
	Initial:   func(id string) Tracking { return Tracking{ID: id} },
	Decide:    DecideTracking,
	Evolve:    EvolveTracking,
}
