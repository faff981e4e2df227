package domain_test

import (
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/money"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/trust/domain"
)

var (
	t0     = time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC)
	day    = 24 * time.Hour
	policy = domain.DefaultPolicy()
)

func eur(minor int64) money.Money { return money.MustNew("EUR", minor) }

func ts(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(t0.Add(d)) }

func pm(m money.Money) *typev1.Money { return m.ToProto() }

// The order: buyer b1; v1 sells line 1 (2 × 10.00) and line 2 (1 × 5.00),
// v2 sells line 3 (1 × 7.00); 32.00 captured.
func confirmed() *orderv1.OrderConfirmed {
	line := func(id, sku, vendor string, qty, unit int64) *orderv1.OrderLine {
		return &orderv1.OrderLine{LineId: id, SkuId: sku, VendorId: vendor, Quantity: qty, UnitPrice: pm(eur(unit)), LineTotal: pm(eur(unit * qty))}
	}
	return &orderv1.OrderConfirmed{OrderId: "o1", BuyerId: "b1", Total: pm(eur(3200)),
		Lines:       []*orderv1.OrderLine{line("1", "p1-a", "v1", 2, 1000), line("2", "p2-b", "v1", 1, 500), line("3", "p3-c", "v2", 1, 700)},
		ConfirmTime: ts(0)}
}

// world is the upstream history: a list of (event id, payload).
type world struct {
	ids  []string
	msgs []proto.Message
}

func (w *world) add(id string, m proto.Message) *world {
	w.ids, w.msgs = append(w.ids, id), append(w.msgs, m)
	return w
}

func (w *world) records() *domain.Records {
	rs := domain.NewRecords()
	for i, m := range w.msgs {
		rs.Apply(w.ids[i], m)
	}
	return rs
}

func (w *world) record(vendor string) domain.Record {
	r, ok := w.records().Record("o1", vendor)
	if !ok {
		panic("no record")
	}
	return r
}

// shippedWorld: v1's part was requested (ship by +2d) and shipped at +1d
// in one shipment (expected +3d) with serials SN-1, SN-2 (line 1) and SN-3
// (line 2); two scans so far, no delivery.
func shippedWorld() *world {
	w := &world{}
	w.add("e-confirmed", confirmed())
	w.add("e-requested", &fulfilmentv1.FulfilmentRequested{FulfilmentId: "f1", OrderId: "o1", VendorId: "v1", BuyerId: "b1",
		Lines: []*fulfilmentv1.ShippedLine{{LineId: "1", Quantity: 2}, {LineId: "2", Quantity: 1}}, ShipByTime: ts(2 * day), RequestTime: ts(0)})
	w.add("e-shipped", &fulfilmentv1.FulfilmentShipped{FulfilmentId: "f1", OrderId: "o1", VendorId: "v1", ShipmentId: "s1",
		Carrier: "dhl", TrackingNumber: "DHL123", FullyShipped: true, ShipTime: ts(day), ExpectedDeliveryTime: ts(3 * day),
		Lines: []*fulfilmentv1.ShippedLine{{LineId: "1", Quantity: 2}, {LineId: "2", Quantity: 1}},
		Packages: []*fulfilmentv1.Package{{PackageId: "1", Evidence: &fulfilmentv1.PackingEvidence{
			PhotoSha256: []string{"aa"},
			Units:       []*fulfilmentv1.PackedUnit{{LineId: "1", SerialNumber: "SN-1"}, {LineId: "1", SerialNumber: "SN-2"}, {LineId: "2", SerialNumber: "SN-3"}},
		}}}})
	w.add("e-scan1", scan("c1", fulfilmentv1.TrackingStatus_TRACKING_STATUS_PICKED_UP, day, nil))
	w.add("e-scan2", scan("c2", fulfilmentv1.TrackingStatus_TRACKING_STATUS_IN_TRANSIT, 2*day, nil))
	return w
}

func scan(carrierID string, st fulfilmentv1.TrackingStatus, at time.Duration, proof *fulfilmentv1.ProofOfDelivery) *fulfilmentv1.TrackingEventRecorded {
	return &fulfilmentv1.TrackingEventRecorded{FulfilmentId: "f1", ShipmentId: "s1", Carrier: "dhl", TrackingNumber: "DHL123",
		CarrierEventId: carrierID, Status: st, OccurTime: ts(at), Proof: proof}
}

// deliveredWorld: shippedWorld delivered at +3d, with or without proof.
func deliveredWorld(withProof bool) *world {
	w := shippedWorld()
	var proof *fulfilmentv1.ProofOfDelivery
	if withProof {
		proof = &fulfilmentv1.ProofOfDelivery{RecipientName: "A. Buyer", PhotoSha256: "bb"}
	}
	w.add("e-scan3", scan("c3", fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED, 3*day, proof))
	w.add("e-delivered", &fulfilmentv1.FulfilmentDelivered{FulfilmentId: "f1", OrderId: "o1", VendorId: "v1", BuyerId: "b1",
		DeliverTime: ts(3 * day), WithProof: withProof, CarrierEventIds: []string{"c3"}})
	return w
}

func lines(ls ...domain.LineRequest) []domain.LineRequest { return ls }

func line(id string, qty int64) domain.LineRequest {
	return domain.LineRequest{LineID: id, Quantity: qty}
}

func lost() *fulfilmentv1.DeliveryFailed {
	return &fulfilmentv1.DeliveryFailed{FulfilmentId: "f1", OrderId: "o1", VendorId: "v1", ShipmentId: "s1",
		Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_LOST, CarrierEventId: "c9", FailTime: ts(2 * day)}
}
