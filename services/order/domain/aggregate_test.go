package domain_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es/estest"
	"github.com/custody/custody/pkg/money"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/order/domain"
)

var (
	t0   = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	eur  = func(minor int64) money.Money { return money.MustNew("EUR", minor) }
	addr = &typev1.Address{RecipientName: "Ada", AddressLines: []string{"1 Main St"}, Locality: "Berlin", CountryCode: "DE"}
)

// twoVendorLines: v1 sells 2 × 10.00 and 1 × 0.99, v2 sells 3 × 5.00.
func twoVendorLines() []domain.Line {
	return []domain.Line{
		{LineID: "1", SKUID: "p1-a", ProductID: "p1", VendorID: "v1", Title: "A", Quantity: 2, UnitPrice: eur(1000), LineTotal: eur(2000)},
		{LineID: "2", SKUID: "p2-b", ProductID: "p2", VendorID: "v2", Title: "B", Quantity: 3, UnitPrice: eur(500), LineTotal: eur(1500)},
		{LineID: "3", SKUID: "p3-c", ProductID: "p3", VendorID: "v1", Title: "C", Quantity: 1, UnitPrice: eur(99), LineTotal: eur(99)},
	}
}

func place() domain.PlaceOrder {
	return domain.PlaceOrder{BuyerID: "b1", Lines: twoVendorLines(), Address: addr,
		Payment: domain.Payment{PSPReference: "psp-1", Amount: eur(3599)}, Time: t0}
}

func placed() *orderv1.OrderPlaced {
	return &orderv1.OrderPlaced{
		OrderId: "o1", BuyerId: "b1", Lines: domain.LinesProto(twoVendorLines()),
		Parts: []*orderv1.VendorPart{
			{VendorId: "v1", LineIds: []string{"1", "3"}, Subtotal: eur(2099).ToProto()},
			{VendorId: "v2", LineIds: []string{"2"}, Subtotal: eur(1500).ToProto()},
		},
		Total: eur(3599).ToProto(), ShippingAddress: addr,
		Payment: &orderv1.Payment{PspReference: "psp-1", Amount: eur(3599).ToProto()}, PlaceTime: timestamppb.New(t0),
	}
}

func ts(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(t0.Add(d)) }

func delivered(vendor string, proof bool) domain.MarkPartDelivered {
	return domain.MarkPartDelivered{VendorID: vendor, FulfilmentID: "f-" + vendor, WithProof: proof, Time: t0.Add(48 * time.Hour)}
}

func partDelivered(vendor string, proof bool) *orderv1.OrderPartDelivered {
	return &orderv1.OrderPartDelivered{OrderId: "o1", VendorId: vendor, FulfilmentId: "f-" + vendor, WithProof: proof, DeliverTime: ts(48 * time.Hour)}
}

func refund(id string, minor int64) domain.RecordRefund {
	return domain.RecordRefund{RefundID: id, Amount: eur(minor), Time: t0.Add(72 * time.Hour)}
}

func refunded(id string, minor, total int64, full bool) *orderv1.OrderRefunded {
	return &orderv1.OrderRefunded{OrderId: "o1", RefundId: id, Amount: eur(minor).ToProto(), RefundedTotal: eur(total).ToProto(), FullyRefunded: full, RefundTime: ts(72 * time.Hour)}
}

func TestDecide(t *testing.T) {
	confirmed := &orderv1.OrderConfirmed{OrderId: "o1", BuyerId: "b1", Parts: placed().Parts, Lines: placed().Lines,
		Total: placed().Total, Payment: placed().Payment, ShippingAddress: addr, ConfirmTime: ts(time.Minute)}
	rejected := &orderv1.OrderRejected{OrderId: "o1", Reason: "sku p2-b: 3 requested, 1 available", SkuId: "p2-b", RejectTime: ts(time.Minute)}
	cancelled := &orderv1.OrderCancelled{OrderId: "o1", Reason: "changed my mind", CancelledBy: "buyer:b1", CancelTime: ts(2 * time.Minute),
		ProductIds: []string{"p1", "p2", "p3"}, BuyerId: "b1"}
	shipped := &orderv1.OrderPartShipped{OrderId: "o1", VendorId: "v2", ShipmentId: "s1", ShipTime: ts(time.Hour)}

	badPay := place()
	badPay.Payment.Amount = eur(3598)
	noLines := place()
	noLines.Lines = nil
	badLine := place()
	badLine.Lines = twoVendorLines()
	badLine.Lines[1].LineTotal = eur(1)
	mixed := place()
	mixed.Lines = twoVendorLines()
	mixed.Lines[2].UnitPrice, mixed.Lines[2].LineTotal = money.MustNew("USD", 99), money.MustNew("USD", 99)
	overpaid := place()
	overpaid.Lines = twoVendorLines()
	overpaid.Lines[1].CreatorID, overpaid.Lines[1].CommissionBps = "c1", 10001

	cancel := domain.CancelOrder{Reason: "changed my mind", By: "buyer:b1", Time: t0.Add(2 * time.Minute)}

	estest.Run(t, domain.Decider, "o1", []estest.Case[domain.Command]{
		{Name: "place splits by vendor with exact subtotals", When: place(), Then: []proto.Message{placed()}},
		{Name: "place again decides nothing", Given: []proto.Message{placed()}, When: place()},
		{Name: "place with payment not the total", When: badPay, Err: estest.Invalid("payment.amount")},
		{Name: "place without lines", When: noLines, Err: estest.Invalid("lines")},
		{Name: "place with inconsistent line total", When: badLine, Err: estest.Invalid("lines")},
		{Name: "place with mixed currencies", When: mixed, Err: estest.Invalid("lines")},
		{Name: "place with a commission above 100%", When: overpaid, Err: estest.Invalid("lines[1].commission_bps")},

		{Name: "confirm pending", Given: []proto.Message{placed()}, When: domain.ConfirmOrder{Time: t0.Add(time.Minute)}, Then: []proto.Message{confirmed}},
		{Name: "confirm twice decides nothing", Given: []proto.Message{placed(), confirmed}, When: domain.ConfirmOrder{Time: t0.Add(time.Hour)}},
		{Name: "confirm after reject decides nothing", Given: []proto.Message{placed(), rejected}, When: domain.ConfirmOrder{Time: t0}},
		{Name: "confirm after cancel decides nothing", Given: []proto.Message{placed(), cancelled}, When: domain.ConfirmOrder{Time: t0}},
		{Name: "confirm unknown order", When: domain.ConfirmOrder{Time: t0}, Err: domain.ErrNotPlaced},

		{Name: "reject pending", Given: []proto.Message{placed()}, When: domain.RejectOrder{SKUID: "p2-b", Reason: rejected.Reason, Time: t0.Add(time.Minute)}, Then: []proto.Message{rejected}},
		{Name: "reject without reason names the sku", Given: []proto.Message{placed()}, When: domain.RejectOrder{SKUID: "p2-b", Time: t0.Add(time.Minute)},
			Then: []proto.Message{&orderv1.OrderRejected{OrderId: "o1", Reason: "sku p2-b could not be reserved", SkuId: "p2-b", RejectTime: ts(time.Minute)}}},
		{Name: "reject after confirm decides nothing", Given: []proto.Message{placed(), confirmed}, When: domain.RejectOrder{SKUID: "x", Time: t0}},
		{Name: "reject unknown order", When: domain.RejectOrder{SKUID: "x"}, Err: domain.ErrNotPlaced},

		{Name: "cancel pending", Given: []proto.Message{placed()}, When: cancel, Then: []proto.Message{cancelled}},
		{Name: "cancel confirmed", Given: []proto.Message{placed(), confirmed}, When: cancel, Then: []proto.Message{cancelled}},
		{Name: "cancel cancelled decides nothing", Given: []proto.Message{placed(), cancelled}, When: cancel},
		{Name: "cancel rejected", Given: []proto.Message{placed(), rejected}, When: cancel, Err: estest.Precondition(domain.ReasonRejected)},
		{Name: "cancel after a part shipped", Given: []proto.Message{placed(), confirmed, shipped}, When: cancel, Err: estest.Precondition(domain.ReasonShipped)},
		{Name: "cancel unknown order", When: cancel, Err: domain.ErrNotPlaced},

		{Name: "ship confirmed part", Given: []proto.Message{placed(), confirmed}, When: domain.MarkPartShipped{VendorID: "v2", ShipmentID: "s1", Time: t0.Add(time.Hour)}, Then: []proto.Message{shipped}},
		{Name: "ship twice decides nothing", Given: []proto.Message{placed(), confirmed, shipped}, When: domain.MarkPartShipped{VendorID: "v2", ShipmentID: "s1"}},
		{Name: "ship pending", Given: []proto.Message{placed()}, When: domain.MarkPartShipped{VendorID: "v2"}, Err: estest.Precondition(domain.ReasonPending)},
		{Name: "ship unknown vendor", Given: []proto.Message{placed(), confirmed}, When: domain.MarkPartShipped{VendorID: "v9"}, Err: estest.Precondition(domain.ReasonUnknown)},

		{Name: "first part delivered", Given: []proto.Message{placed(), confirmed, shipped}, When: delivered("v2", true),
			Then: []proto.Message{partDelivered("v2", true)}},
		{Name: "last part delivered makes the order delivered", Given: []proto.Message{placed(), confirmed, shipped, partDelivered("v2", true)}, When: delivered("v1", false),
			Then: []proto.Message{partDelivered("v1", false), &orderv1.OrderDelivered{OrderId: "o1", DeliverTime: ts(48 * time.Hour)}}},
		{Name: "delivered twice decides nothing", Given: []proto.Message{placed(), confirmed, partDelivered("v2", true)}, When: delivered("v2", true)},
		{Name: "delivered for unknown vendor", Given: []proto.Message{placed(), confirmed}, When: delivered("v9", true), Err: estest.Precondition(domain.ReasonUnknown)},
		{Name: "delivered for unknown order", When: delivered("v1", true), Err: domain.ErrNotPlaced},

		{Name: "partial refund keeps the state", Given: []proto.Message{placed(), confirmed}, When: refund("r1", 1000),
			Then: []proto.Message{refunded("r1", 1000, 1000, false)}},
		{Name: "refunds up to the total make it refunded", Given: []proto.Message{placed(), confirmed, refunded("r1", 1000, 1000, false)}, When: refund("r2", 2599),
			Then: []proto.Message{refunded("r2", 2599, 3599, true)}},
		{Name: "the same refund twice decides nothing", Given: []proto.Message{placed(), confirmed, refunded("r1", 1000, 1000, false)}, When: refund("r1", 1000)},
		{Name: "refund of unknown order", When: refund("r1", 1), Err: domain.ErrNotPlaced},
	})
}

func TestEvolve(t *testing.T) {
	o := domain.Decider.Fold("o1", nil)
	if o.Status != domain.StatusNone {
		t.Fatalf("initial status %v", o.Status)
	}
	o = domain.Evolve(o, placed())
	if o.Status != domain.StatusPending || o.Total != eur(3599) || len(o.Parts) != 2 || o.Parts[0].Subtotal != eur(2099) || !o.PlaceTime.Equal(t0) {
		t.Fatalf("after placed: %+v", o)
	}
	before := o.Clone()
	o = domain.Evolve(o, &orderv1.OrderConfirmed{OrderId: "o1", ConfirmTime: ts(time.Minute)})
	o = domain.Evolve(o, &orderv1.OrderPartShipped{OrderId: "o1", VendorId: "v1", ShipmentId: "s", ShipTime: ts(time.Hour)})
	if o.Status != domain.StatusConfirmed || !o.Parts[0].Shipped || o.Parts[1].Shipped || !o.Shipped() || !o.UpdateTime.Equal(t0.Add(time.Hour)) {
		t.Fatalf("after shipped: %+v", o)
	}
	if before.Parts[0].Shipped || before.Status != domain.StatusPending {
		t.Fatal("Clone shares state with the original")
	}
	o = domain.Evolve(o, &orderv1.OrderCancelled{Reason: "r", CancelledBy: "support", CancelTime: ts(2 * time.Hour)})
	if o.Status != domain.StatusCancelled || o.Reason != "r" || o.CancelledBy != "support" {
		t.Fatalf("after cancelled: %+v", o)
	}
}

func TestOrderID(t *testing.T) {
	a, b := domain.OrderID("b1", "r1"), domain.OrderID("b2", "r1")
	if a == b || a != domain.OrderID("b1", "r1") || len(a) != 33 || a[0] != 'o' {
		t.Fatalf("ids %q %q", a, b)
	}
	// Length-prefixed parts: ("b1", "r1") and ("b", "1r1") differ.
	if domain.OrderID("b", "1r1") == a {
		t.Fatal("ambiguous id derivation")
	}
}
