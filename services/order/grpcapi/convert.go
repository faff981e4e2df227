package grpcapi

import (
	"slices"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/pkg/protoconv"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/order/app"
	"github.com/custody/custody/services/order/domain"
)

var statuses = protoconv.NewEnum(map[domain.Status]orderv1.OrderState{
	domain.StatusNone:      orderv1.OrderState_ORDER_STATE_UNSPECIFIED,
	domain.StatusPending:   orderv1.OrderState_ORDER_STATE_PENDING,
	domain.StatusConfirmed: orderv1.OrderState_ORDER_STATE_CONFIRMED,
	domain.StatusRejected:  orderv1.OrderState_ORDER_STATE_REJECTED,
	domain.StatusCancelled: orderv1.OrderState_ORDER_STATE_CANCELLED,
	domain.StatusDelivered: orderv1.OrderState_ORDER_STATE_DELIVERED,
	domain.StatusCompleted: orderv1.OrderState_ORDER_STATE_COMPLETED,
	domain.StatusRefunded:  orderv1.OrderState_ORDER_STATE_REFUNDED,
	domain.StatusShipped:   orderv1.OrderState_ORDER_STATE_SHIPPED,
})

var partStates = protoconv.NewEnum(map[domain.PartState]orderv1.PartState{
	0:                    orderv1.PartState_PART_STATE_UNSPECIFIED,
	domain.PartOpen:      orderv1.PartState_PART_STATE_OPEN,
	domain.PartShipped:   orderv1.PartState_PART_STATE_SHIPPED,
	domain.PartDelivered: orderv1.PartState_PART_STATE_DELIVERED,
	domain.PartCancelled: orderv1.PartState_PART_STATE_CANCELLED,
	domain.PartRefunded:  orderv1.PartState_PART_STATE_REFUNDED,
	domain.PartSettled:   orderv1.PartState_PART_STATE_SETTLED,
})

// OrderProto is the order as the order service shows it in full, at
// revision; the audit's replay shows an order the same way.
func OrderProto(o domain.Order, revision uint64) *orderv1.Order {
	parts := domain.PartsProto(o.Parts)
	for i, p := range o.Parts {
		parts[i].Shipped, parts[i].Delivered = p.Shipped, p.Delivered
		parts[i].State, parts[i].CancelReason, parts[i].CancelledBy = partStates.Wire(domain.PartStateOf(p)), p.CancelReason, p.CancelledBy
		if p.Refunded.Currency != "" {
			parts[i].Refunded = p.Refunded.ToProto()
		}
	}
	var refunded *typev1.Money
	if o.Refunded.Currency != "" {
		refunded = o.Refunded.ToProto()
	}
	return &orderv1.Order{
		OrderId: o.ID, BuyerId: o.BuyerID, State: statuses.Wire(o.Status),
		Lines: domain.LinesProto(o.Lines), Parts: parts, Total: o.Total.ToProto(), RefundedTotal: refunded,
		ShippingAddress: o.Address, Attribution: domain.AttributionProto(o.Attribution),
		Payment: domain.PaymentProto(o.Payment), Reason: o.Reason,
		PlaceTime: protoconv.Timestamp(o.PlaceTime), UpdateTime: protoconv.Timestamp(o.UpdateTime), Revision: revision,
	}
}

func orderProto(v app.OrderView) *orderv1.Order { return OrderProto(v.Order, v.Revision) }

// vendorView keeps only what the caller's vendors need of an order: their
// own lines and parts. Payment and total (which reveal other vendors'
// sales) are left out.
func vendorView(o *orderv1.Order, c auth.Caller) *orderv1.Order {
	mine := func(vendorID string) bool { return c.Is(auth.Vendor, vendorID) }
	v := proto.Clone(o).(*orderv1.Order)
	v.Lines = slices.DeleteFunc(v.Lines, func(l *orderv1.OrderLine) bool { return !mine(l.GetVendorId()) })
	v.Parts = slices.DeleteFunc(v.Parts, func(p *orderv1.VendorPart) bool { return !mine(p.GetVendorId()) })
	v.Payment, v.Total = nil, nil
	return v
}

// creatorView keeps only what the caller's creators need of an order
// attributed to them: the lines they earn commission on, the attribution,
// the state and times. The buyer, the address, the payment, the total and
// the parts (which name every vendor) are left out.
func creatorView(o *orderv1.Order, c auth.Caller) *orderv1.Order {
	lines := slices.DeleteFunc(slices.Clone(o.GetLines()), func(l *orderv1.OrderLine) bool { return !c.Is(auth.Creator, l.GetCreatorId()) })
	return &orderv1.Order{OrderId: o.GetOrderId(), State: o.GetState(), Lines: lines, Attribution: o.GetAttribution(),
		PlaceTime: o.GetPlaceTime(), UpdateTime: o.GetUpdateTime(), Revision: o.GetRevision()}
}

// orderFor is the order as caller may see it: whole, as one of its vendors
// or as its creator.
func orderFor(c auth.Caller, v app.OrderView) *orderv1.Order {
	o := orderProto(v)
	if fullView(c, v.Order.BuyerID) {
		return o
	}
	for _, p := range v.Order.Parts {
		if c.Is(auth.Vendor, p.VendorID) {
			return vendorView(o, c)
		}
	}
	return creatorView(o, c)
}

func itoa(i int) string { return strconv.Itoa(i) }
