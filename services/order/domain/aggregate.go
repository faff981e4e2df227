package domain

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/money"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// Command is a command to the order aggregate. Each command type carries
// its own decision (decide), so the compiler checks that every one has one.
type Command interface {
	decide(o Order) ([]proto.Message, error)
}

// PlaceOrder places an order from already priced (PriceLines) and
// attributed lines. Parts and total are computed here (Split), and the
// payment checked against the total (CheckPayment).
type PlaceOrder struct {
	BuyerID     string
	Lines       []Line
	Address     *typev1.Address
	Attribution *Attribution
	Payment     Payment
	Time        time.Time
}

// ConfirmOrder: the catalog reserved every line.
type ConfirmOrder struct{ Time time.Time }

// RejectOrder: the catalog could not reserve SKUID.
type RejectOrder struct {
	SKUID  string
	Reason string
	Time   time.Time
}

// CancelOrder cancels an order that has not shipped.
type CancelOrder struct {
	Reason string
	By     string // "buyer:b1", "support", …
	Time   time.Time
}

// MarkPartShipped records that a vendor's part shipped (fulfilment's fact).
type MarkPartShipped struct {
	VendorID   string
	ShipmentID string
	Time       time.Time
}

// MarkPartDelivered records that a vendor's part was delivered
// (fulfilment's fact). When it is the last part, the order is DELIVERED.
type MarkPartDelivered struct {
	VendorID     string
	FulfilmentID string
	WithProof    bool
	Time         time.Time
}

// RecordRefund records money returned to the buyer (trust's fact). Trust
// caps refunds at what was captured; the order only keeps the tally.
type RecordRefund struct {
	RefundID string
	Amount   money.Money
	Time     time.Time
}

// Decide returns the events a command produces. Commands that find the
// order already where they would take it decide nothing (idempotent); every
// command but PlaceOrder needs an order that was placed.
func Decide(o Order, c Command) ([]proto.Message, error) {
	if _, place := c.(PlaceOrder); !place && o.Status == StatusNone {
		return nil, ErrNotPlaced
	}
	return c.decide(o)
}

func (c ConfirmOrder) decide(o Order) ([]proto.Message, error) {
	if o.Status != StatusPending {
		return nil, nil // already confirmed; or rejected/cancelled first, which stands
	}
	return []proto.Message{&orderv1.OrderConfirmed{
		OrderId: o.ID, BuyerId: o.BuyerID, Parts: PartsProto(o.Parts), Lines: LinesProto(o.Lines),
		Total: o.Total.ToProto(), Payment: PaymentProto(o.Payment), Attribution: AttributionProto(o.Attribution),
		ShippingAddress: o.Address, ConfirmTime: timestamppb.New(c.Time),
	}}, nil
}

func (c RejectOrder) decide(o Order) ([]proto.Message, error) {
	if o.Status != StatusPending {
		return nil, nil
	}
	reason := c.Reason
	if reason == "" {
		reason = fmt.Sprintf("sku %s could not be reserved", c.SKUID)
	}
	return []proto.Message{&orderv1.OrderRejected{OrderId: o.ID, Reason: reason, SkuId: c.SKUID, RejectTime: timestamppb.New(c.Time)}}, nil
}

// PlaceOrder's decision turns priced, attributed lines into OrderPlaced. The
// request's shape (buyer, address, payment reference, line count and
// quantities) was checked at the edge and the lines priced from the
// catalog by the app; what is decided here is the order itself: one part
// per vendor with exact subtotals, commissions that are rates, and a
// payment that is exactly the total.
func (c PlaceOrder) decide(o Order) ([]proto.Message, error) {
	if o.Status != StatusNone {
		return nil, nil // the same request again: its order stands
	}
	var v Violations
	for i, l := range c.Lines {
		if l.CommissionBps < 0 || l.CommissionBps > money.BasisPointsPerUnit {
			v.Add(lineField(i, "commission_bps"), "must be 0..%d", money.BasisPointsPerUnit)
		}
	}
	parts, total, err := Split(c.Lines)
	if err != nil {
		v.Add("lines", "%v", err)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := CheckPayment(total, c.Payment.Amount).Err(); err != nil {
		return nil, err
	}
	return []proto.Message{&orderv1.OrderPlaced{
		OrderId: o.ID, BuyerId: c.BuyerID, Lines: LinesProto(c.Lines), Parts: PartsProto(parts),
		Total: total.ToProto(), ShippingAddress: c.Address, Attribution: AttributionProto(c.Attribution),
		Payment: PaymentProto(c.Payment), PlaceTime: timestamppb.New(c.Time),
	}}, nil
}

func (c CancelOrder) decide(o Order) ([]proto.Message, error) {
	switch o.Status {
	case StatusCancelled:
		return nil, nil
	case StatusRejected:
		return nil, fault.Precondition(ReasonRejected, "order %s was rejected (%s); there is nothing to cancel", o.ID, o.Reason)
	case StatusPending, StatusConfirmed:
		if o.Shipped() {
			return nil, fault.Precondition(ReasonShipped, "order %s has a shipped part and can no longer be cancelled; open a claim or return instead", o.ID)
		}
		return []proto.Message{&orderv1.OrderCancelled{OrderId: o.ID, Reason: c.Reason, CancelledBy: c.By,
			CancelTime: timestamppb.New(c.Time), ProductIds: o.ProductIDs()}}, nil
	}
	return nil, fault.Precondition(ReasonShipped, "order %s is %s and can no longer be cancelled", o.ID, o.Status)
}

func (c MarkPartShipped) decide(o Order) ([]proto.Message, error) {
	for _, p := range o.Parts {
		if p.VendorID != c.VendorID {
			continue
		}
		if p.Shipped {
			return nil, nil
		}
		// A shipment is a fact in the world: it is recorded even on an order
		// cancelled meanwhile (a race the vendor and support then settle).
		if o.Status == StatusPending || o.Status == StatusRejected {
			return nil, fault.Precondition(ReasonPending, "order %s is %s; nothing of it may ship", o.ID, o.Status)
		}
		return []proto.Message{&orderv1.OrderPartShipped{OrderId: o.ID, VendorId: c.VendorID, ShipmentId: c.ShipmentID, ShipTime: timestamppb.New(c.Time)}}, nil
	}
	return nil, fault.Precondition(ReasonUnknown, "order %s has no part for vendor %s", o.ID, c.VendorID)
}

func (c MarkPartDelivered) decide(o Order) ([]proto.Message, error) {
	remaining := 0
	found := false
	for _, p := range o.Parts {
		if p.VendorID == c.VendorID {
			found = true
			if p.Delivered {
				return nil, nil
			}
			continue
		}
		if !p.Delivered {
			remaining++
		}
	}
	if !found {
		return nil, fault.Precondition(ReasonUnknown, "order %s has no part for vendor %s", o.ID, c.VendorID)
	}
	// Like a shipment, a delivery is a fact: it is recorded whatever the
	// order's state.
	out := []proto.Message{&orderv1.OrderPartDelivered{OrderId: o.ID, VendorId: c.VendorID, FulfilmentId: c.FulfilmentID, WithProof: c.WithProof, DeliverTime: timestamppb.New(c.Time)}}
	if remaining == 0 && (o.Status == StatusConfirmed || o.Status == StatusPending) {
		out = append(out, &orderv1.OrderDelivered{OrderId: o.ID, DeliverTime: timestamppb.New(c.Time)})
	}
	return out, nil
}

func (c RecordRefund) decide(o Order) ([]proto.Message, error) {
	for _, id := range o.RefundIDs {
		if id == c.RefundID {
			return nil, nil
		}
	}
	total, err := o.Refunded.Add(c.Amount)
	if o.Refunded.Currency == "" {
		total, err = c.Amount, nil
	}
	if err != nil {
		return nil, fmt.Errorf("order %s: refund %s: %w", o.ID, c.RefundID, err)
	}
	return []proto.Message{&orderv1.OrderRefunded{
		OrderId: o.ID, RefundId: c.RefundID, Amount: c.Amount.ToProto(), RefundedTotal: total.ToProto(),
		FullyRefunded: total.Minor >= o.Total.Minor, RefundTime: timestamppb.New(c.Time),
	}}, nil
}

// Evolve applies one event. Unknown events leave the order unchanged.
func Evolve(o Order, e proto.Message) Order {
	switch e := e.(type) {
	case *orderv1.OrderPlaced:
		o.Status = StatusPending
		o.BuyerID = e.GetBuyerId()
		o.Lines = LinesFromProto(e.GetLines())
		o.Parts = PartsFromProto(e.GetParts())
		o.Total = moneyFrom(e.GetTotal())
		o.Address = e.GetShippingAddress()
		o.Attribution = AttributionFromProto(e.GetAttribution())
		o.Payment = Payment{PSPReference: e.GetPayment().GetPspReference(), Amount: moneyFrom(e.GetPayment().GetAmount())}
		o.PlaceTime = e.GetPlaceTime().AsTime()
		o.UpdateTime = o.PlaceTime
	case *orderv1.OrderConfirmed:
		o.Status = StatusConfirmed
		o.UpdateTime = e.GetConfirmTime().AsTime()
	case *orderv1.OrderRejected:
		o.Status = StatusRejected
		o.Reason, o.RejectedSKU = e.GetReason(), e.GetSkuId()
		o.UpdateTime = e.GetRejectTime().AsTime()
	case *orderv1.OrderCancelled:
		o.Status = StatusCancelled
		o.Reason, o.CancelledBy = e.GetReason(), e.GetCancelledBy()
		o.UpdateTime = e.GetCancelTime().AsTime()
	case *orderv1.OrderPartShipped:
		for i := range o.Parts {
			if o.Parts[i].VendorID == e.GetVendorId() {
				o.Parts[i].Shipped, o.Parts[i].ShipmentID = true, e.GetShipmentId()
			}
		}
		o.UpdateTime = e.GetShipTime().AsTime()
	case *orderv1.OrderPartDelivered:
		for i := range o.Parts {
			if o.Parts[i].VendorID == e.GetVendorId() {
				o.Parts[i].Delivered = true
			}
		}
		o.UpdateTime = e.GetDeliverTime().AsTime()
	case *orderv1.OrderDelivered:
		o.Status = StatusDelivered
		o.UpdateTime = e.GetDeliverTime().AsTime()
	case *orderv1.OrderRefunded:
		o.RefundIDs = append(o.RefundIDs, e.GetRefundId())
		o.Refunded = moneyFrom(e.GetRefundedTotal())
		if e.GetFullyRefunded() {
			o.Status = StatusRefunded
		}
		o.UpdateTime = e.GetRefundTime().AsTime()
	}
	return o
}
