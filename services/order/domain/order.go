// Package domain is the order aggregate of the order service, as pure
// functions over plain data: no clock, no I/O, no transport or storage.
//
// An Order is decided and evolved by Decider: PlaceOrder, ConfirmOrder,
// RejectOrder and CancelOrder (OrderPlaced, OrderConfirmed, OrderRejected,
// OrderCancelled) for the order as a whole; then each vendor's part meets
// its own fate (parts.go): CancelOrderLines (OrderLinesCancelled, or
// OrderCancelled when nothing would remain of an order that shipped
// nothing), RecordPartCancelled (OrderPartCancelled: fulfilment's ship-by
// policy cancels one part), MarkPartShipped, MarkPartDelivered,
// MarkPartSettled (OrderPartShipped, OrderPartDelivered, OrderPartSettled,
// with OrderDelivered and OrderCompleted when they become due),
// RecordRefund (OrderRefunded, per part and line) and ChangeShippingAddress
// (OrderAddressChanged). The order's status is not set by events but
// derived from the saga and the parts (status.go: DeriveStatus and
// PartStateOf, each a table).
//
// The rules that turn a buyer's request into an order live
// here too, each run once, by the layer that has what it needs:
// CheckLineRequests (the request's shape: 1..MaxLines lines, quantities in
// 1..MaxQuantity, no SKU twice) at the edge; PriceLines (catalog prices,
// one currency) and AttributeToLink / AttributeToSession (creator
// commission within the attribution window) in the app, with data from its
// catalog view; Split (one part per vendor, exact subtotals) and
// CheckPayment (authorised amount = total) in Decide. Bad input comes back
// as *fault.InvalidError with AIP-style field paths ("lines[2].quantity"), a
// forbidden transition as *PreconditionError (pkg/fault's kinds).
package domain

import (
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/money"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// Status is where an order is in its life.
type Status int

// Statuses. StatusNone is an order that was never placed.
const (
	StatusNone Status = iota
	StatusPending
	StatusConfirmed
	StatusRejected
	StatusCancelled
	StatusDelivered
	StatusCompleted
	StatusRefunded
	// StatusShipped: every part not cancelled has shipped, not all
	// delivered. Last, so that stored statuses keep their numbers.
	StatusShipped
)

func (s Status) String() string {
	switch s {
	case StatusPending:
		return "pending"
	case StatusConfirmed:
		return "confirmed"
	case StatusRejected:
		return "rejected"
	case StatusCancelled:
		return "cancelled"
	case StatusDelivered:
		return "delivered"
	case StatusCompleted:
		return "completed"
	case StatusRefunded:
		return "refunded"
	case StatusShipped:
		return "shipped"
	}
	return "none"
}

// Final reports whether the stock saga is over for an order in this status:
// everything but pending (and never placed).
func (s Status) Final() bool { return s != StatusNone && s != StatusPending }

// Line is a priced order line.
type Line struct {
	LineID    string // "1", "2", … in request order
	SKUID     string
	ProductID string
	VendorID  string
	Title     string
	Quantity  int64
	UnitPrice money.Money
	LineTotal money.Money
	// CreatorID earns CommissionBps of LineTotal; empty when unattributed.
	CreatorID     string
	CommissionBps int32
	// CancelledQuantity units were cancelled before shipping
	// (OrderLinesCancelled, OrderPartCancelled, OrderCancelled);
	// RefundedQuantity units were refunded after shipping (trust's refunds
	// naming the line).
	CancelledQuantity int64
	RefundedQuantity  int64
}

// Open is the units of the line not cancelled.
func (l Line) Open() int64 { return l.Quantity - l.CancelledQuantity }

// Part is one vendor's share of an order: one fulfilment. Its outcome is
// its own (PartState): a part may be cancelled while another ships.
type Part struct {
	VendorID   string
	LineIDs    []string
	Subtotal   money.Money
	Shipped    bool
	ShipmentID string
	Delivered  bool
	// Cancelled: every unit of the part was cancelled before it shipped,
	// by CancelReason and CancelledBy ("buyer:b1", "service:fulfilment").
	Cancelled    bool
	CancelReason string
	CancelledBy  string
	// Refunded is what went back to the buyer for this part: its cancelled
	// units (of a confirmed order) and trust's refunds of its lines. Zero
	// (no currency) until the first.
	Refunded money.Money
	// Settled: its return window closed and payouts released (or refunded)
	// its money (FundsReleased). A settled part was delivered.
	Settled bool
}

// Attribution is the creator touchpoint credited with an order.
type Attribution struct {
	AffiliateLinkID string
	LiveSessionID   string
	CreatorID       string
	TouchTime       time.Time
}

// Payment is the buyer's payment authorisation.
type Payment struct {
	PSPReference string
	Amount       money.Money
}

// Order is the state of the order aggregate.
type Order struct {
	ID          string
	Status      Status
	BuyerID     string
	Lines       []Line
	Parts       []Part
	Total       money.Money
	Address     *typev1.Address
	Attribution *Attribution
	Payment     Payment
	// Reason says why it was rejected or cancelled.
	Reason      string
	RejectedSKU string
	CancelledBy string
	PlaceTime   time.Time
	UpdateTime  time.Time
	// Refunded is what went back to the buyer so far: the cancelled units
	// of a confirmed order and trust's refunds; RefundIDs trust's refunds.
	Refunded  money.Money
	RefundIDs []string
	// Saga is where the stock saga left the order: StatusPending,
	// StatusConfirmed or StatusRejected. Status is derived from it and the
	// parts (DeriveStatus).
	Saga Status
	// AllDelivered and Completed: OrderDelivered and OrderCompleted were
	// recorded (each is decided once).
	AllDelivered bool
	Completed    bool
}

// Line is the order's line lineID; ok false if it has none.
func (o Order) Line(lineID string) (Line, bool) {
	for _, l := range o.Lines {
		if l.LineID == lineID {
			return l, true
		}
	}
	return Line{}, false
}

// Part is the order's part of vendorID; ok false if it has none.
func (o Order) Part(vendorID string) (Part, bool) {
	for _, p := range o.Parts {
		if p.VendorID == vendorID {
			return p, true
		}
	}
	return Part{}, false
}

// HasVendor reports whether the order has a part for vendorID.
func (o Order) HasVendor(vendorID string) bool {
	for _, p := range o.Parts {
		if p.VendorID == vendorID {
			return true
		}
	}
	return false
}

// ProductIDs are the products the order's lines name, sorted and without
// repeats.
func (o Order) ProductIDs() []string {
	ids := make([]string, 0, len(o.Lines))
	for _, l := range o.Lines {
		ids = append(ids, l.ProductID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// Shipped reports whether any part has shipped.
func (o Order) Shipped() bool {
	for _, p := range o.Parts {
		if p.Shipped {
			return true
		}
	}
	return false
}

// Clone deep-copies an order.
func (o Order) Clone() Order {
	c := o
	c.Lines = append([]Line(nil), o.Lines...)
	c.RefundIDs = append([]string(nil), o.RefundIDs...)
	c.Parts = make([]Part, len(o.Parts))
	for i, p := range o.Parts {
		p.LineIDs = append([]string(nil), p.LineIDs...)
		c.Parts[i] = p
	}
	if o.Address != nil {
		c.Address = proto.Clone(o.Address).(*typev1.Address)
	}
	if o.Attribution != nil {
		a := *o.Attribution
		c.Attribution = &a
	}
	if o.Parts == nil {
		c.Parts = nil
	}
	return c
}

// OrderID is the id of the order a buyer places with requestID: the same
// request always names the same order (AIP-155), different buyers' requests
// never collide. "o" and 32 hex characters (128 bits of SHA-256).
func OrderID(buyerID, requestID string) string {
	return "o" + es.DeriveID("order", buyerID, requestID)
}

// Decider is the order aggregate (stream "order-<id>").
var Decider = es.Decider[Order, Command]{
	Aggregate: "order",
	Initial:   func(id string) Order { return Order{ID: id} },
	Decide:    Decide,
	Evolve:    Evolve,
	Clone:     Order.Clone,
}
