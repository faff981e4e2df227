package grpcapi

import (
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	"github.com/custody/custody/services/fulfilment/app"
	"github.com/custody/custody/services/fulfilment/domain"
)

var timeZero time.Time

var statuses = map[domain.Status]fulfilmentv1.FulfilmentState{
	domain.StatusNone:             fulfilmentv1.FulfilmentState_FULFILMENT_STATE_UNSPECIFIED,
	domain.StatusRequested:        fulfilmentv1.FulfilmentState_FULFILMENT_STATE_REQUESTED,
	domain.StatusPartiallyShipped: fulfilmentv1.FulfilmentState_FULFILMENT_STATE_PARTIALLY_SHIPPED,
	domain.StatusShipped:          fulfilmentv1.FulfilmentState_FULFILMENT_STATE_SHIPPED,
	domain.StatusDelivered:        fulfilmentv1.FulfilmentState_FULFILMENT_STATE_DELIVERED,
	domain.StatusDeliveryFailed:   fulfilmentv1.FulfilmentState_FULFILMENT_STATE_DELIVERY_FAILED,
	domain.StatusCancelled:        fulfilmentv1.FulfilmentState_FULFILMENT_STATE_CANCELLED,
}

func statusFromProto(s fulfilmentv1.FulfilmentState) (domain.Status, bool) {
	for d, p := range statuses {
		if p == s {
			return d, true
		}
	}
	return domain.StatusNone, false
}

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
		FulfilmentId: f.ID, OrderId: f.OrderID, VendorId: f.VendorID, BuyerId: f.BuyerID, State: statuses[f.Status()],
		Lines: domain.LinesProto(f.Lines), UnshippedLines: domain.LinesProto(f.Unshipped()), ShippingAddress: f.Address,
		ShipByTime: stamp(f.ShipBy), ShipByMissed: f.ShipByMissed, ReceiptConfirmTime: stamp(f.ReceiptTime),
		CancelReason: f.CancelReason, CancelTime: stamp(f.CancelTime), RequestTime: stamp(f.RequestTime), Revision: v.Revision,
	}
	if f.Cancelled || f.FullyShipped() {
		out.UnshippedLines = nil
	}
	for _, s := range f.Shipments {
		out.Shipments = append(out.Shipments, shipmentProto(s, history))
	}
	if d, ok := f.Delivery(); ok {
		out.Delivery = &fulfilmentv1.Delivery{DeliverTime: stamp(d.Time), WithProof: d.WithProof,
			ConfirmedByBuyer: d.ConfirmedByBuyer, CarrierEventIds: d.CarrierEventIDs}
	}
	return out
}

func shipmentProto(s domain.Shipment, history bool) *fulfilmentv1.Shipment {
	p := s.Progress()
	out := &fulfilmentv1.Shipment{
		ShipmentId: s.ID, Carrier: s.Carrier, TrackingNumber: s.TrackingNumber, Packages: domain.PackagesProto(s.Packages),
		Lines: domain.LinesProto(s.Lines), ShipTime: stamp(s.ShipTime), ExpectedDeliveryTime: stamp(s.ExpectedDelivery),
		Status: p.Status, DeliveredWithProof: p.Proof != nil, Proof: domain.ProofProto(p.Proof),
		TrackingEventCount: int32(len(s.Scans)),
	}
	if p.Delivery != nil {
		out.DeliverTime = stamp(p.Delivery.OccurTime)
	}
	if history {
		for _, sc := range s.Scans {
			out.TrackingEvents = append(out.TrackingEvents, &fulfilmentv1.TrackingEvent{
				CarrierEventId: sc.CarrierEventID, Status: sc.Status, OccurTime: stamp(sc.OccurTime),
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

func stamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
