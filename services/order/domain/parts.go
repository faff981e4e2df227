package domain

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/money"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// The commands through which each part of an order meets its own fate:
// units or a whole part cancelled before shipping, a part cancelled by
// fulfilment, a part settled by payouts, and the address changed while
// nothing has shipped.

// ErrOtherVendor: a vendor asked to cancel lines of another vendor's part.
// The edge answers PermissionDenied.
var ErrOtherVendor = errors.New("not the vendor's part")

// LineCancellation is units of one line to cancel; Quantity 0 cancels
// every unit left.
type LineCancellation struct {
	LineID   string
	Quantity int64
}

// CancelOrderLines cancels units of unshipped lines of a confirmed order,
// or (VendorID) every unit left of one vendor's unshipped part: exactly one
// of Lines and VendorID. Vendor, when set, is the vendor asking, who may
// cancel only its own part's lines (ErrOtherVendor otherwise). The buyer
// gets back exactly the cancelled units' price (OrderLinesCancelled); when
// nothing of an order that shipped nothing would remain, the order is
// cancelled instead (OrderCancelled).
type CancelOrderLines struct {
	Lines    []LineCancellation
	VendorID string
	Vendor   string
	Reason   string
	By       string
	Time     time.Time
}

// RecordPartCancelled records that fulfilment cancelled one vendor's part
// before it shipped (its ship-by policy; or the fulfilments of an order
// cancelled whole). The part's units are cancelled, and what was left of
// it goes back to the buyer if the order was confirmed (its payment
// captured). The other parts go on. A part already cancelled decides
// nothing; a part that shipped is refused (ReasonShipped): the shipment is
// a fact, the cancellation came too late.
type RecordPartCancelled struct {
	VendorID     string
	FulfilmentID string
	Reason       string
	By           string
	Time         time.Time
}

// MarkPartSettled records that payouts settled a delivered part (its
// return window closed with no claim open and its money was released,
// FundsReleased). A settled part counts as delivered: payouts releases
// only delivered parts, and its event may come before fulfilment's. When
// every part is then settled or cancelled the order is COMPLETED.
type MarkPartSettled struct {
	VendorID string
	Time     time.Time
}

// ChangeShippingAddress changes where the order goes, until its first part
// ships. The same address again decides nothing.
type ChangeShippingAddress struct {
	Address *typev1.Address
	By      string
	Time    time.Time
}

func (c CancelOrderLines) decide(o Order) ([]proto.Message, error) {
	if err := checkOpen(o, "have lines cancelled"); err != nil {
		return nil, err
	}
	if o.Status == StatusPending {
		return nil, fault.Precondition(ReasonPending, "order %s is pending: nothing of it is reserved yet; cancel the whole order with CancelOrder", o.ID)
	}
	want, err := c.units(o)
	if err != nil {
		return nil, err
	}
	cur := o.Total.Currency
	ev := &orderv1.OrderLinesCancelled{OrderId: o.ID, Reason: c.Reason, CancelledBy: c.By, CancelTime: timestamppb.New(c.Time),
		BuyerId: o.BuyerID}
	refund := int64(0)
	left := map[string]int64{} // vendor -> units left after
	for _, l := range o.Lines {
		n := want[l.LineID]
		left[l.VendorID] += l.Open() - n
		if n == 0 {
			continue
		}
		amount, err := l.UnitPrice.Mul(n)
		if err != nil {
			return nil, fmt.Errorf("order %s: line %s: %w", o.ID, l.LineID, err)
		}
		refund += amount.Minor
		ev.Lines = append(ev.Lines, &orderv1.CancelledLine{LineId: l.LineID, SkuId: l.SKUID, ProductId: l.ProductID,
			VendorId: l.VendorID, Quantity: n, Amount: amount.ToProto()})
	}
	kept := false
	for _, p := range o.Parts {
		switch {
		case p.Cancelled:
		case left[p.VendorID] == 0:
			ev.ClosedVendorIds = append(ev.ClosedVendorIds, p.VendorID)
		default:
			kept = true
		}
	}
	if !kept && !o.Shipped() {
		return CancelOrder{Reason: c.Reason, By: c.By, Time: c.Time}.decide(o)
	}
	ev.Refund = money.Money{Currency: cur, Minor: refund}.ToProto()
	ev.RefundedTotal = money.Money{Currency: cur, Minor: o.Refunded.Minor + refund}.ToProto()
	return withFollowUps(o, c.Time, ev), nil
}

// units are the units c cancels per line id, after checking c against o.
func (c CancelOrderLines) units(o Order) (map[string]int64, error) {
	want := map[string]int64{}
	if c.VendorID != "" {
		p, ok := o.Part(c.VendorID)
		switch {
		case !ok:
			return nil, (&Violations{{Field: "vendor_id", Description: fmt.Sprintf("order %s has no part for vendor %s", o.ID, c.VendorID)}}).Err()
		case c.Vendor != "" && c.Vendor != c.VendorID:
			return nil, fmt.Errorf("%w: vendor %s may not cancel vendor %s's part", ErrOtherVendor, c.Vendor, c.VendorID)
		}
		if err := cancellable(o, p, "its part"); err != nil {
			return nil, err
		}
		for _, id := range p.LineIDs {
			if l, ok := o.Line(id); ok && l.Open() > 0 {
				want[id] = l.Open()
			}
		}
		return want, nil
	}
	if len(c.Lines) == 0 {
		return nil, (&Violations{{Field: "lines", Description: "name the lines to cancel, or a vendor_id"}}).Err()
	}
	var v Violations
	lines := make([]Line, len(c.Lines))
	for i, lc := range c.Lines {
		l, ok := o.Line(lc.LineID)
		switch {
		case !ok:
			v.Add(lineField(i, "line_id"), "order %s has no line %q", o.ID, lc.LineID)
		case want[lc.LineID] != 0:
			v.Add(lineField(i, "line_id"), "line %s is named twice", lc.LineID)
		}
		lines[i], want[lc.LineID] = l, 1
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	for _, l := range lines {
		if c.Vendor != "" && l.VendorID != c.Vendor {
			return nil, fmt.Errorf("%w: line %s is vendor %s's, not vendor %s's", ErrOtherVendor, l.LineID, l.VendorID, c.Vendor)
		}
	}
	for _, l := range lines {
		p, _ := o.Part(l.VendorID)
		if err := cancellable(o, p, "line "+l.LineID); err != nil {
			return nil, err
		}
	}
	for i, lc := range c.Lines {
		l := lines[i]
		n := lc.Quantity
		switch {
		case n < 0:
			v.Add(lineField(i, "quantity"), "must not be negative")
		case l.Open() == 0:
			v.Add(lineField(i, "quantity"), "every unit of line %s is already cancelled", l.LineID)
		case n > l.Open():
			v.Add(lineField(i, "quantity"), "at most %d: the units of line %s not yet cancelled", l.Open(), l.LineID)
		case n == 0:
			n = l.Open()
		}
		want[l.LineID] = n
	}
	return want, v.Err()
}

// cancellable refuses to cancel what of part p that has shipped or was
// cancelled; what names it in the refusal.
func cancellable(o Order, p Part, what string) error {
	switch {
	case p.Cancelled:
		// Who, not why: the reason may be someone's words, sealed in the
		// state (a token), and an error is not revealed.
		return fault.Precondition(ReasonPartCancelled, "order %s: %s (vendor %s) was already cancelled by %s", o.ID, what, p.VendorID, p.CancelledBy)
	case p.Shipped || p.Delivered || p.Settled:
		return fault.Precondition(ReasonShipped, "order %s: %s has shipped (vendor %s's part) and can no longer be cancelled; open a claim or return instead", o.ID, what, p.VendorID)
	}
	return nil
}

// checkOpen refuses a command that changes an order the saga rejected or
// of which every part is cancelled; doing names the change.
func checkOpen(o Order, doing string) error {
	switch o.Status {
	case StatusRejected:
		return fault.Precondition(ReasonRejected, "order %s was rejected (%s) and cannot %s", o.ID, o.Reason, doing)
	case StatusCancelled:
		return fault.Precondition(ReasonCancelled, "order %s was cancelled and cannot %s", o.ID, doing)
	}
	return nil
}

// knownPart is o's part of vendor, or a refusal naming it unknown.
func knownPart(o Order, vendor string) (Part, error) {
	p, ok := o.Part(vendor)
	if !ok {
		return p, fault.Precondition(ReasonUnknown, "order %s has no part for vendor %s", o.ID, vendor)
	}
	return p, nil
}

func (c RecordPartCancelled) decide(o Order) ([]proto.Message, error) {
	p, err := knownPart(o, c.VendorID)
	switch {
	case err != nil:
		return nil, err
	case p.Cancelled || o.Status == StatusRejected:
		return nil, nil
	case p.Shipped || p.Delivered || p.Settled:
		return nil, fault.Precondition(ReasonShipped, "order %s: vendor %s's part has shipped; its cancellation by %s came too late and is not recorded", o.ID, c.VendorID, c.By)
	}
	refund := int64(0)
	if o.Saga == StatusConfirmed { // captured: what was left goes back
		refund = o.openAmount(p)
	}
	cur := o.Total.Currency
	return withFollowUps(o, c.Time, &orderv1.OrderPartCancelled{
		OrderId: o.ID, VendorId: c.VendorID, FulfilmentId: c.FulfilmentID, Reason: c.Reason, CancelledBy: c.By,
		Refund:        money.Money{Currency: cur, Minor: refund}.ToProto(),
		RefundedTotal: money.Money{Currency: cur, Minor: o.Refunded.Minor + refund}.ToProto(),
		CancelTime:    timestamppb.New(c.Time),
	}), nil
}

// openAmount is the price of p's units not cancelled. Line totals are
// bounded (PlaceOrder), so the sum cannot overflow.
func (o Order) openAmount(p Part) int64 {
	sum := int64(0)
	for _, id := range p.LineIDs {
		if l, ok := o.Line(id); ok {
			sum += l.UnitPrice.Minor * l.Open()
		}
	}
	return sum
}

func (c MarkPartSettled) decide(o Order) ([]proto.Message, error) {
	p, err := knownPart(o, c.VendorID)
	switch {
	case err != nil:
		return nil, err
	case p.Settled || p.Cancelled:
		return nil, nil // payouts settles a part once; a cancelled part has nothing to settle
	}
	return withFollowUps(o, c.Time, &orderv1.OrderPartSettled{OrderId: o.ID, VendorId: c.VendorID, SettleTime: timestamppb.New(c.Time)}), nil
}

func (c ChangeShippingAddress) decide(o Order) ([]proto.Message, error) {
	if err := checkOpen(o, "change its address"); err != nil {
		return nil, err
	}
	if o.Shipped() {
		return nil, fault.Precondition(ReasonShipped, "order %s has a shipped part: its address can no longer change", o.ID)
	}
	if proto.Equal(o.Address, c.Address) {
		return nil, nil
	}
	return []proto.Message{&orderv1.OrderAddressChanged{OrderId: o.ID, ShippingAddress: c.Address, ChangedBy: c.By,
		ChangeTime: timestamppb.New(c.Time), BuyerId: o.BuyerID}}, nil
}

// withFollowUps is events e and what they make due: OrderDelivered when
// they leave every part that is not cancelled delivered, OrderCompleted
// when they leave every part settled or cancelled (each once).
func withFollowUps(o Order, at time.Time, e ...proto.Message) []proto.Message {
	next := o.Clone()
	for _, ev := range e {
		next = Evolve(next, ev)
	}
	if !next.AllDelivered && next.everyKeptDelivered() {
		e = append(e, &orderv1.OrderDelivered{OrderId: o.ID, DeliverTime: timestamppb.New(at)})
	}
	if !next.Completed && next.everySettled() {
		e = append(e, &orderv1.OrderCompleted{OrderId: o.ID, CompleteTime: timestamppb.New(at)})
	}
	return e
}
