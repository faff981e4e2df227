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
// caps refunds at what was captured; the order keeps the tally: the
// order's, the part's of VendorID (empty: the part of the lines' vendor)
// and the refunded units of each line.
type RecordRefund struct {
	RefundID string
	Amount   money.Money
	VendorID string
	Lines    []RefundLine
	Time     time.Time
}

// RefundLine is units of one line a refund covers, and their price.
type RefundLine struct {
	LineID   string
	Quantity int64
	Amount   money.Money
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
	switch {
	case o.Status == StatusCancelled:
		return nil, nil
	case o.Status == StatusRejected:
		return nil, fault.Precondition(ReasonRejected, "order %s was rejected (%s); there is nothing to cancel", o.ID, o.Reason)
	case o.Shipped():
		return nil, fault.Precondition(ReasonShipped, "order %s has a shipped part and can no longer be cancelled; open a claim or return instead", o.ID)
	}
	// What was already cancelled of it stays as it was; the rest is
	// cancelled now.
	return []proto.Message{&orderv1.OrderCancelled{OrderId: o.ID, Reason: c.Reason, CancelledBy: c.By,
		CancelTime: timestamppb.New(c.Time), ProductIds: o.ProductIDs(), BuyerId: o.BuyerID}}, nil
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
	p, err := knownPart(o, c.VendorID)
	switch {
	case err != nil:
		return nil, err
	case p.Delivered:
		return nil, nil
	}
	// Like a shipment, a delivery is a fact: it is recorded whatever the
	// order's state. The order is DELIVERED once every part not cancelled
	// is (withFollowUps).
	return withFollowUps(o, c.Time, &orderv1.OrderPartDelivered{OrderId: o.ID, VendorId: c.VendorID, FulfilmentId: c.FulfilmentID,
		WithProof: c.WithProof, DeliverTime: timestamppb.New(c.Time)}), nil
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
	vendor := c.VendorID
	ev := &orderv1.OrderRefunded{
		OrderId: o.ID, RefundId: c.RefundID, Amount: c.Amount.ToProto(), RefundedTotal: total.ToProto(),
		FullyRefunded: total.Minor >= o.Total.Minor, RefundTime: timestamppb.New(c.Time),
	}
	for _, l := range c.Lines {
		if ol, ok := o.Line(l.LineID); ok && vendor == "" {
			vendor = ol.VendorID
		}
		ev.Lines = append(ev.Lines, &orderv1.RefundedLine{LineId: l.LineID, Quantity: l.Quantity, Amount: l.Amount.ToProto()})
	}
	ev.VendorId = vendor
	return withFollowUps(o, c.Time, ev), nil
}

// Evolve applies one event, then derives the order's status from what it
// recorded (DeriveStatus). Unknown events leave the order unchanged.
func Evolve(o Order, e proto.Message) Order {
	o = evolve(o, e)
	o.Status = DeriveStatus(o)
	return o
}

func evolve(o Order, e proto.Message) Order {
	switch e := e.(type) {
	case *orderv1.OrderPlaced:
		o.Saga = StatusPending
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
		o.Saga = StatusConfirmed
		o.UpdateTime = e.GetConfirmTime().AsTime()
	case *orderv1.OrderRejected:
		o.Saga = StatusRejected
		o.Reason, o.RejectedSKU = e.GetReason(), e.GetSkuId()
		o.UpdateTime = e.GetRejectTime().AsTime()
	case *orderv1.OrderCancelled:
		// Every part not cancelled yet is, with what is left of its lines;
		// a confirmed order's money for them goes back.
		o.Reason, o.CancelledBy = e.GetReason(), e.GetCancelledBy()
		for i := range o.Parts {
			if !o.Parts[i].Cancelled {
				o.cancelPart(i, e.GetReason(), e.GetCancelledBy(), o.Saga == StatusConfirmed)
			}
		}
		o.UpdateTime = e.GetCancelTime().AsTime()
	case *orderv1.OrderLinesCancelled:
		for _, cl := range e.GetLines() {
			if i := o.lineIndex(cl.GetLineId()); i >= 0 {
				o.Lines[i].CancelledQuantity += cl.GetQuantity()
			}
			o.refundPart(cl.GetVendorId(), moneyFrom(cl.GetAmount()))
		}
		o.Refunded = moneyFrom(e.GetRefundedTotal())
		for _, v := range e.GetClosedVendorIds() {
			if i := o.partIndex(v); i >= 0 {
				p := &o.Parts[i]
				p.Cancelled, p.CancelReason, p.CancelledBy = true, e.GetReason(), e.GetCancelledBy()
			}
		}
		o.noteCancelled(e.GetReason(), e.GetCancelledBy())
		o.UpdateTime = e.GetCancelTime().AsTime()
	case *orderv1.OrderPartCancelled:
		if i := o.partIndex(e.GetVendorId()); i >= 0 {
			o.cancelPart(i, e.GetReason(), e.GetCancelledBy(), false)
			o.refundPart(e.GetVendorId(), moneyFrom(e.GetRefund()))
		}
		o.Refunded = moneyFrom(e.GetRefundedTotal())
		o.noteCancelled(e.GetReason(), e.GetCancelledBy())
		o.UpdateTime = e.GetCancelTime().AsTime()
	case *orderv1.OrderAddressChanged:
		o.Address = e.GetShippingAddress()
		o.UpdateTime = e.GetChangeTime().AsTime()
	case *orderv1.OrderPartShipped:
		if i := o.partIndex(e.GetVendorId()); i >= 0 {
			o.Parts[i].Shipped, o.Parts[i].ShipmentID = true, e.GetShipmentId()
		}
		o.UpdateTime = e.GetShipTime().AsTime()
	case *orderv1.OrderPartDelivered:
		if i := o.partIndex(e.GetVendorId()); i >= 0 {
			o.Parts[i].Delivered = true
		}
		o.UpdateTime = e.GetDeliverTime().AsTime()
	case *orderv1.OrderDelivered:
		o.AllDelivered = true
		o.UpdateTime = e.GetDeliverTime().AsTime()
	case *orderv1.OrderPartSettled:
		if i := o.partIndex(e.GetVendorId()); i >= 0 {
			// Payouts settles only a delivered part.
			o.Parts[i].Settled, o.Parts[i].Delivered, o.Parts[i].Shipped = true, true, true
		}
		o.UpdateTime = e.GetSettleTime().AsTime()
	case *orderv1.OrderCompleted:
		o.Completed = true
		o.UpdateTime = e.GetCompleteTime().AsTime()
	case *orderv1.OrderRefunded:
		o.RefundIDs = append(o.RefundIDs, e.GetRefundId())
		o.Refunded = moneyFrom(e.GetRefundedTotal())
		for _, rl := range e.GetLines() {
			if i := o.lineIndex(rl.GetLineId()); i >= 0 {
				l := &o.Lines[i]
				l.RefundedQuantity = min(l.RefundedQuantity+rl.GetQuantity(), l.Open())
			}
		}
		o.refundPart(e.GetVendorId(), moneyFrom(e.GetAmount()))
		o.UpdateTime = e.GetRefundTime().AsTime()
	}
	return o
}

// cancelPart cancels part i and what is left of its lines; refund: their
// price goes back to the buyer (the order was captured).
func (o *Order) cancelPart(i int, reason, by string, refund bool) {
	p := &o.Parts[i]
	p.Cancelled, p.CancelReason, p.CancelledBy = true, reason, by
	left := o.openAmount(*p)
	for _, id := range p.LineIDs {
		if j := o.lineIndex(id); j >= 0 {
			o.Lines[j].CancelledQuantity = o.Lines[j].Quantity
		}
	}
	if refund && left > 0 {
		o.refundPart(p.VendorID, money.Money{Currency: o.Total.Currency, Minor: left})
		o.Refunded = money.Money{Currency: o.Total.Currency, Minor: o.Refunded.Minor + left}
	}
}

// refundPart adds m to what vendor's part had refunded (nothing for an
// unknown vendor or an empty amount).
func (o *Order) refundPart(vendor string, m money.Money) {
	i := o.partIndex(vendor)
	if i < 0 || m.Minor == 0 {
		return
	}
	p := &o.Parts[i]
	p.Refunded = money.Money{Currency: m.Currency, Minor: p.Refunded.Minor + m.Minor}
}

// noteCancelled gives an order whose last part was just cancelled the
// reason of that cancellation, as a whole-order cancellation would.
func (o *Order) noteCancelled(reason, by string) {
	if o.Reason == "" && o.allParts(func(p Part) bool { return p.Cancelled }) {
		o.Reason, o.CancelledBy = reason, by
	}
}

func (o Order) lineIndex(id string) int {
	for i, l := range o.Lines {
		if l.LineID == id {
			return i
		}
	}
	return -1
}

func (o Order) partIndex(vendor string) int {
	for i, p := range o.Parts {
		if p.VendorID == vendor {
			return i
		}
	}
	return -1
}
