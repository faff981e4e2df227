package grpcapi

import (
	"strconv"
	"time"

	"github.com/custody/custody/pkg/protoconv"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	"github.com/custody/custody/services/fulfilment/app"
	"github.com/custody/custody/services/fulfilment/domain"
)

var timeZero time.Time

var statuses = protoconv.NewEnum(map[domain.Status]fulfilmentv1.FulfilmentState{
	domain.StatusNone:             fulfilmentv1.FulfilmentState_FULFILMENT_STATE_UNSPECIFIED,
	domain.StatusRequested:        fulfilmentv1.FulfilmentState_FULFILMENT_STATE_REQUESTED,
	domain.StatusPartiallyShipped: fulfilmentv1.FulfilmentState_FULFILMENT_STATE_PARTIALLY_SHIPPED,
	domain.StatusShipped:          fulfilmentv1.FulfilmentState_FULFILMENT_STATE_SHIPPED,
	domain.StatusDelivered:        fulfilmentv1.FulfilmentState_FULFILMENT_STATE_DELIVERED,
	domain.StatusDeliveryFailed:   fulfilmentv1.FulfilmentState_FULFILMENT_STATE_DELIVERY_FAILED,
	domain.StatusCancelled:        fulfilmentv1.FulfilmentState_FULFILMENT_STATE_CANCELLED,
})

// StateProto is the API's state of a fulfilment in status; the audit's
// replay shows fulfilments the same way.
func StateProto(status domain.Status) fulfilmentv1.FulfilmentState { return statuses.Wire(status) }

var watchKinds = map[app.WatchKind]fulfilmentv1.WatchKind{
	app.KindSnapshot:         fulfilmentv1.WatchKind_WATCH_KIND_SNAPSHOT,
	app.KindSnapshotComplete: fulfilmentv1.WatchKind_WATCH_KIND_SNAPSHOT_COMPLETE,
	app.KindChange:           fulfilmentv1.WatchKind_WATCH_KIND_CHANGE,
}

// fulfilmentProto converts a fulfilment; history says whether every
// shipment's tracking events are included.
func fulfilmentProto(v app.View, history bool) *fulfilmentv1.Fulfilment {
	f := v.Fulfilment
	out := &fulfilmentv1.Fulfilment{
		FulfilmentId: f.ID, OrderId: f.OrderID, VendorId: f.VendorID, BuyerId: f.BuyerID, State: statuses.Wire(f.Status()),
		Lines: domain.LinesProto(f.Lines), UnshippedLines: domain.LinesProto(f.Unshipped()), ShippingAddress: f.Address,
		ShipByTime: protoconv.Timestamp(f.ShipBy), ShipByMissed: f.ShipByMissed, ReceiptConfirmTime: protoconv.Timestamp(f.ReceiptTime),
		CancelReason: f.CancelReason, CancelTime: protoconv.Timestamp(f.CancelTime), RequestTime: protoconv.Timestamp(f.RequestTime), Revision: v.Revision,
	}
	if f.Cancelled || f.FullyShipped() {
		out.UnshippedLines = nil
	}
	for _, s := range f.Shipments {
		out.Shipments = append(out.Shipments, shipmentProto(s, history))
	}
	if d, ok := f.Delivery(); ok {
		out.Delivery = &fulfilmentv1.Delivery{DeliverTime: protoconv.Timestamp(d.Time), WithProof: d.WithProof,
			ConfirmedByBuyer: d.ConfirmedByBuyer, CarrierEventIds: d.CarrierEventIDs}
	}
	return out
}

func shipmentProto(s domain.Shipment, history bool) *fulfilmentv1.Shipment {
	p := s.Progress()
	out := &fulfilmentv1.Shipment{
		ShipmentId: s.ID, Carrier: s.Carrier, TrackingNumber: s.TrackingNumber, Packages: domain.PackagesProto(s.Packages),
		Lines: domain.LinesProto(s.Lines), ShipTime: protoconv.Timestamp(s.ShipTime), ExpectedDeliveryTime: protoconv.Timestamp(s.ExpectedDelivery),
		Status: p.Status, DeliveredWithProof: p.Proof != nil, Proof: domain.ProofProto(p.Proof),
		TrackingEventCount: int32(len(s.Scans)),
	}
	if p.Delivery != nil {
		out.DeliverTime = protoconv.Timestamp(p.Delivery.OccurTime)
	}
	if history {
		for _, sc := range s.Scans {
			out.TrackingEvents = append(out.TrackingEvents, &fulfilmentv1.TrackingEvent{
				CarrierEventId: sc.CarrierEventID, Status: sc.Status, OccurTime: protoconv.Timestamp(sc.OccurTime),
				Location: sc.Location, Description: sc.Description, Proof: domain.ProofProto(sc.Proof),
			})
		}
	}
	return out
}

func watchProto(m app.WatchMessage) *fulfilmentv1.WatchFulfilmentsResponse {
	out := &fulfilmentv1.WatchFulfilmentsResponse{Cursor: strconv.FormatUint(m.Cursor, 10), Kind: watchKinds[m.Kind], EventType: m.EventType}
	if m.Kind != app.KindSnapshotComplete {
		out.Fulfilment = fulfilmentProto(m.View, true)
	}
	return out
}
