package domain

import "slices"

// An order's status is not set by any one event: it is derived, after every
// event, from where the stock saga left it (Order.Saga) and from its parts'
// outcomes, by DeriveStatus. The first row that holds wins:
//
//	#  the order                                                    status
//	1  was never placed                                             NONE
//	2  the saga rejected it                                         REJECTED
//	3  every part is cancelled                                      CANCELLED
//	4  the saga has not answered yet                                PENDING
//	5  something shipped, and refunded ≥ total (all that was        REFUNDED
//	   captured went back: cancelled units and trust's refunds)
//	6  every part is settled, cancelled or refunded undelivered     COMPLETED
//	   (and not every part cancelled)
//	7  every part not cancelled is delivered (or settled), or was   DELIVERED
//	   refunded in full without being delivered
//	8  every part not cancelled has shipped                         SHIPPED
//	9  otherwise (confirmed, some part still to ship)               CONFIRMED
//
// So CANCELLED is only an order of which nothing was kept, and beats
// REFUNDED, which needs a shipment: an order cancelled before shipping had
// its money returned, not refunded. REFUNDED beats COMPLETED: a fully
// refunded order whose parts then settle (payouts releases a refunded part
// with nothing in it) stays REFUNDED, the more telling fact for the buyer.
//
// A part's own state (PartStateOf), first row that holds:
//
//	the part                                                        state
//	every unit cancelled before it shipped                          CANCELLED
//	its return window closed and its money settled                  SETTLED
//	shipped, and refunded ≥ subtotal (cancelled units + refunds)     REFUNDED
//	delivered                                                       DELIVERED
//	shipped                                                         SHIPPED
//	otherwise                                                       OPEN
//
// A part refunded in full that was never delivered (a parcel lost and
// refunded on a not-received claim) is as final as a settled one: payouts
// opens no return window for it and will release nothing, so it counts as
// settled for COMPLETED and does not hold DELIVERED back.
//
// A shipment recorded after its part was cancelled (a race the vendor and
// support then settle) leaves the part CANCELLED: the buyer had the money
// back, and the status does not pretend otherwise.

// PartState is where one vendor's part of an order is.
type PartState int

// Part states.
const (
	PartOpen PartState = iota + 1
	PartShipped
	PartDelivered
	PartCancelled
	PartRefunded
	PartSettled
)

func (s PartState) String() string {
	switch s {
	case PartOpen:
		return "open"
	case PartShipped:
		return "shipped"
	case PartDelivered:
		return "delivered"
	case PartCancelled:
		return "cancelled"
	case PartRefunded:
		return "refunded"
	case PartSettled:
		return "settled"
	}
	return "unspecified"
}

// PartStateOf is p's state (the table above).
func PartStateOf(p Part) PartState {
	switch {
	case p.Cancelled:
		return PartCancelled
	case p.Settled:
		return PartSettled
	case (p.Shipped || p.Delivered) && p.Refunded.Minor >= p.Subtotal.Minor:
		return PartRefunded
	case p.Delivered:
		return PartDelivered
	case p.Shipped:
		return PartShipped
	}
	return PartOpen
}

// DeriveStatus is o's status (the table above). It reads only o.Saga, the
// parts and the money, never o.Status.
func DeriveStatus(o Order) Status {
	switch {
	case o.Saga == StatusNone:
		return StatusNone
	case o.Saga == StatusRejected:
		return StatusRejected
	case o.allParts(func(p Part) bool { return p.Cancelled }):
		return StatusCancelled
	case o.Saga == StatusPending:
		return StatusPending
	case o.Shipped() && o.Refunded.Minor >= o.Total.Minor:
		return StatusRefunded
	case o.allParts(func(p Part) bool { return p.Cancelled || p.Settled || p.refundedUndelivered() }):
		return StatusCompleted
	case o.allParts(func(p Part) bool { return p.Cancelled || p.Delivered || p.refundedUndelivered() }):
		return StatusDelivered
	case o.allParts(func(p Part) bool { return p.Cancelled || p.Shipped }):
		return StatusShipped
	}
	return StatusConfirmed
}

// allParts reports whether every part satisfies f (false for no parts).
func (o Order) allParts(f func(Part) bool) bool {
	for _, p := range o.Parts {
		if !f(p) {
			return false
		}
	}
	return len(o.Parts) > 0
}

// refundedUndelivered: p shipped, was never delivered and has been
// refunded in full; nothing of it is left to deliver or settle.
func (p Part) refundedUndelivered() bool {
	return p.Shipped && !p.Delivered && !p.Cancelled && p.Refunded.Minor >= p.Subtotal.Minor
}

// everyKeptDelivered: some part was delivered and every other one is
// cancelled or refunded undelivered (OrderDelivered is due).
func (o Order) everyKeptDelivered() bool {
	return o.allParts(func(p Part) bool { return p.Cancelled || p.Delivered || p.refundedUndelivered() }) &&
		slices.ContainsFunc(o.Parts, func(p Part) bool { return p.Delivered })
}

// everySettled: every part is settled, cancelled or refunded undelivered,
// and not every part cancelled (OrderCompleted is due).
func (o Order) everySettled() bool {
	return o.allParts(func(p Part) bool { return p.Cancelled || p.Settled || p.refundedUndelivered() }) &&
		!o.allParts(func(p Part) bool { return p.Cancelled })
}
