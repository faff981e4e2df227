package domain_test

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/google/go-cmp/cmp"

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
	cancelled := &orderv1.OrderCancelled{OrderId: "o1", Reason: "changed my mind", CancelledBy: "buyer:b1", CancelTime: ts(2 * time.Minute)}
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

	tests := []struct {
		name   string
		given  []proto.Message
		when   domain.Command
		then   []proto.Message
		err    error  // errors.Is
		field  string // InvalidError naming this field
		reason string // PreconditionError reason
	}{
		{name: "place splits by vendor with exact subtotals", when: place(), then: []proto.Message{placed()}},
		{name: "place again decides nothing", given: []proto.Message{placed()}, when: place()},
		{name: "place with payment not the total", when: badPay, field: "payment.amount"},
		{name: "place without lines", when: noLines, field: "lines"},
		{name: "place with inconsistent line total", when: badLine, field: "lines"},
		{name: "place with mixed currencies", when: mixed, field: "lines"},
		{name: "place with a commission above 100%", when: overpaid, field: "lines[1].commission_bps"},

		{name: "confirm pending", given: []proto.Message{placed()}, when: domain.ConfirmOrder{Time: t0.Add(time.Minute)}, then: []proto.Message{confirmed}},
		{name: "confirm twice decides nothing", given: []proto.Message{placed(), confirmed}, when: domain.ConfirmOrder{Time: t0.Add(time.Hour)}},
		{name: "confirm after reject decides nothing", given: []proto.Message{placed(), rejected}, when: domain.ConfirmOrder{Time: t0}},
		{name: "confirm after cancel decides nothing", given: []proto.Message{placed(), cancelled}, when: domain.ConfirmOrder{Time: t0}},
		{name: "confirm unknown order", when: domain.ConfirmOrder{Time: t0}, err: domain.ErrNotPlaced},

		{name: "reject pending", given: []proto.Message{placed()}, when: domain.RejectOrder{SKUID: "p2-b", Reason: rejected.Reason, Time: t0.Add(time.Minute)}, then: []proto.Message{rejected}},
		{name: "reject without reason names the sku", given: []proto.Message{placed()}, when: domain.RejectOrder{SKUID: "p2-b", Time: t0.Add(time.Minute)},
			then: []proto.Message{&orderv1.OrderRejected{OrderId: "o1", Reason: "sku p2-b could not be reserved", SkuId: "p2-b", RejectTime: ts(time.Minute)}}},
		{name: "reject after confirm decides nothing", given: []proto.Message{placed(), confirmed}, when: domain.RejectOrder{SKUID: "x", Time: t0}},
		{name: "reject unknown order", when: domain.RejectOrder{SKUID: "x"}, err: domain.ErrNotPlaced},

		{name: "cancel pending", given: []proto.Message{placed()}, when: cancel, then: []proto.Message{cancelled}},
		{name: "cancel confirmed", given: []proto.Message{placed(), confirmed}, when: cancel, then: []proto.Message{cancelled}},
		{name: "cancel cancelled decides nothing", given: []proto.Message{placed(), cancelled}, when: cancel},
		{name: "cancel rejected", given: []proto.Message{placed(), rejected}, when: cancel, reason: domain.ReasonRejected},
		{name: "cancel after a part shipped", given: []proto.Message{placed(), confirmed, shipped}, when: cancel, reason: domain.ReasonShipped},
		{name: "cancel unknown order", when: cancel, err: domain.ErrNotPlaced},

		{name: "ship confirmed part", given: []proto.Message{placed(), confirmed}, when: domain.MarkPartShipped{VendorID: "v2", ShipmentID: "s1", Time: t0.Add(time.Hour)}, then: []proto.Message{shipped}},
		{name: "ship twice decides nothing", given: []proto.Message{placed(), confirmed, shipped}, when: domain.MarkPartShipped{VendorID: "v2", ShipmentID: "s1"}},
		{name: "ship pending", given: []proto.Message{placed()}, when: domain.MarkPartShipped{VendorID: "v2"}, reason: domain.ReasonPending},
		{name: "ship unknown vendor", given: []proto.Message{placed(), confirmed}, when: domain.MarkPartShipped{VendorID: "v9"}, reason: domain.ReasonUnknown},

		{name: "first part delivered", given: []proto.Message{placed(), confirmed, shipped}, when: delivered("v2", true),
			then: []proto.Message{partDelivered("v2", true)}},
		{name: "last part delivered makes the order delivered", given: []proto.Message{placed(), confirmed, shipped, partDelivered("v2", true)}, when: delivered("v1", false),
			then: []proto.Message{partDelivered("v1", false), &orderv1.OrderDelivered{OrderId: "o1", DeliverTime: ts(48 * time.Hour)}}},
		{name: "delivered twice decides nothing", given: []proto.Message{placed(), confirmed, partDelivered("v2", true)}, when: delivered("v2", true)},
		{name: "delivered for unknown vendor", given: []proto.Message{placed(), confirmed}, when: delivered("v9", true), reason: domain.ReasonUnknown},
		{name: "delivered for unknown order", when: delivered("v1", true), err: domain.ErrNotPlaced},

		{name: "partial refund keeps the state", given: []proto.Message{placed(), confirmed}, when: refund("r1", 1000),
			then: []proto.Message{refunded("r1", 1000, 1000, false)}},
		{name: "refunds up to the total make it refunded", given: []proto.Message{placed(), confirmed, refunded("r1", 1000, 1000, false)}, when: refund("r2", 2599),
			then: []proto.Message{refunded("r2", 2599, 3599, true)}},
		{name: "the same refund twice decides nothing", given: []proto.Message{placed(), confirmed, refunded("r1", 1000, 1000, false)}, when: refund("r1", 1000)},
		{name: "refund of unknown order", when: refund("r1", 1), err: domain.ErrNotPlaced},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := domain.Decider.GivenWhenThen("o1", tt.given, tt.when)
			switch {
			case tt.err != nil:
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
			case tt.field != "":
				var inv *domain.InvalidError
				if !errors.As(err, &inv) || inv.Violations[0].Field != tt.field {
					t.Fatalf("err = %v, want an invalid %s", err, tt.field)
				}
			case tt.reason != "":
				var pre *domain.PreconditionError
				if !errors.As(err, &pre) || pre.Reason != tt.reason {
					t.Fatalf("err = %v, want precondition %s", err, tt.reason)
				}
			case err != nil:
				t.Fatalf("err = %v", err)
			}
			if diff := cmp.Diff(tt.then, got, protocmp.Transform()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
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
