package grpcapi

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/money"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/audit/app"
	"github.com/custody/custody/services/audit/domain"
	fulfilment "github.com/custody/custody/services/fulfilment/domain"
	order "github.com/custody/custody/services/order/domain"
	trust "github.com/custody/custody/services/trust/domain"
)

func timelineEventProto(e domain.TimelineEvent) *auditv1.TimelineEvent {
	return &auditv1.TimelineEvent{
		Service: e.Service, Stream: e.Stream, Revision: e.Revision, Position: e.Position, EventId: e.EventID,
		Type: e.Type, RecordTime: stamp(e.RecordedAt), Actor: e.Actor, CorrelationId: e.CorrelationID,
		CausationId: e.CausationID, PayloadJson: e.PayloadJSON, PayloadError: e.PayloadError, RawPayload: e.RawPayload,
		Hash: e.Hash, PreviousHash: e.PrevHash,
	}
}

func brokenLinkProto(b *domain.BrokenLink) *auditv1.BrokenLink {
	if b == nil {
		return nil
	}
	return &auditv1.BrokenLink{Service: b.Service, Stream: b.Stream, Revision: b.Revision, EventId: b.EventID, Reason: b.Reason}
}

func verificationProto(v domain.Verification) *auditv1.VerifyOrderChainResponse {
	resp := &auditv1.VerifyOrderChainResponse{Valid: v.Valid, EventsChecked: int64(v.EventsChecked),
		StreamsChecked: int32(len(v.Streams)), BrokenLink: brokenLinkProto(v.First)}
	for _, c := range v.Streams {
		resp.Streams = append(resp.Streams, &auditv1.StreamCheck{Service: c.Ref.Service, Stream: c.Ref.Stream,
			EventsChecked: int64(c.Checked), Valid: c.Broken == nil, BrokenLink: brokenLinkProto(c.Broken)})
	}
	return resp
}

func replayProto(r app.Replayed) *auditv1.ReplayOrderResponse {
	resp := &auditv1.ReplayOrderResponse{
		AsOf: timestamppb.New(r.AsOf), Order: orderProto(r.Order, r.OrderRevision),
		EventsApplied: int32(r.EventsApplied), LastEventId: r.LastEventID,
		ChainValid: r.Chain.Valid, BrokenLink: brokenLinkProto(r.Chain.First),
	}
	for _, f := range r.Fulfilments {
		resp.Fulfilments = append(resp.Fulfilments, fulfilmentProto(f))
	}
	for _, c := range r.Claims.Claims {
		resp.Claims = append(resp.Claims, claimProto(c))
	}
	resp.Money = moneyProto(r.Money)
	return resp
}

var orderStates = map[order.Status]orderv1.OrderState{
	order.StatusNone:      orderv1.OrderState_ORDER_STATE_UNSPECIFIED,
	order.StatusPending:   orderv1.OrderState_ORDER_STATE_PENDING,
	order.StatusConfirmed: orderv1.OrderState_ORDER_STATE_CONFIRMED,
	order.StatusRejected:  orderv1.OrderState_ORDER_STATE_REJECTED,
	order.StatusCancelled: orderv1.OrderState_ORDER_STATE_CANCELLED,
	order.StatusDelivered: orderv1.OrderState_ORDER_STATE_DELIVERED,
	order.StatusCompleted: orderv1.OrderState_ORDER_STATE_COMPLETED,
	order.StatusRefunded:  orderv1.OrderState_ORDER_STATE_REFUNDED,
}

// orderProto is the order as the order service shows it (full view).
func orderProto(o order.Order, rev uint64) *orderv1.Order {
	if o.Status == order.StatusNone {
		return &orderv1.Order{OrderId: o.ID}
	}
	parts := order.PartsProto(o.Parts)
	for i, p := range o.Parts {
		parts[i].Shipped, parts[i].Delivered = p.Shipped, p.Delivered
	}
	out := &orderv1.Order{
		OrderId: o.ID, BuyerId: o.BuyerID, State: orderStates[o.Status],
		Lines: order.LinesProto(o.Lines), Parts: parts, Total: o.Total.ToProto(),
		ShippingAddress: o.Address, Attribution: order.AttributionProto(o.Attribution),
		Payment: order.PaymentProto(o.Payment), Reason: o.Reason,
		PlaceTime: stamp(o.PlaceTime), UpdateTime: stamp(o.UpdateTime), Revision: rev,
	}
	if o.Refunded.Currency != "" {
		out.RefundedTotal = o.Refunded.ToProto()
	}
	return out
}

var fulfilmentStates = map[fulfilment.Status]fulfilmentv1.FulfilmentState{
	fulfilment.StatusNone:             fulfilmentv1.FulfilmentState_FULFILMENT_STATE_UNSPECIFIED,
	fulfilment.StatusRequested:        fulfilmentv1.FulfilmentState_FULFILMENT_STATE_REQUESTED,
	fulfilment.StatusPartiallyShipped: fulfilmentv1.FulfilmentState_FULFILMENT_STATE_PARTIALLY_SHIPPED,
	fulfilment.StatusShipped:          fulfilmentv1.FulfilmentState_FULFILMENT_STATE_SHIPPED,
	fulfilment.StatusDelivered:        fulfilmentv1.FulfilmentState_FULFILMENT_STATE_DELIVERED,
	fulfilment.StatusDeliveryFailed:   fulfilmentv1.FulfilmentState_FULFILMENT_STATE_DELIVERY_FAILED,
	fulfilment.StatusCancelled:        fulfilmentv1.FulfilmentState_FULFILMENT_STATE_CANCELLED,
}

func fulfilmentProto(fa domain.FulfilmentAt) *auditv1.ReplayedFulfilment {
	f := fa.Fulfilment
	out := &auditv1.ReplayedFulfilment{FulfilmentId: f.ID, VendorId: f.VendorID, State: fulfilmentStates[f.Status()],
		ShipByTime: stamp(f.ShipBy), CancelReason: f.CancelReason, Revision: fa.Revision}
	if d, ok := f.Delivery(); ok {
		out.DeliverTime = stamp(d.Time)
	}
	for _, s := range f.Shipments {
		p := s.Progress()
		rs := &auditv1.ReplayedShipment{ShipmentId: s.ID, Carrier: s.Carrier, TrackingNumber: s.TrackingNumber,
			Lines: fulfilment.LinesProto(s.Lines), Status: p.Status, ShipTime: stamp(s.ShipTime),
			ExpectedDeliveryTime: stamp(s.ExpectedDelivery), TrackingEventCount: int32(len(s.Scans))}
		if p.Delivery != nil {
			rs.DeliverTime = stamp(p.Delivery.OccurTime)
		}
		out.Shipments = append(out.Shipments, rs)
	}
	return out
}

var claimStates = map[trust.State]trustv1.ClaimState{
	trust.StateNone:             trustv1.ClaimState_CLAIM_STATE_UNSPECIFIED,
	trust.StateAwaitingVendor:   trustv1.ClaimState_CLAIM_STATE_AWAITING_VENDOR,
	trust.StateOfferPending:     trustv1.ClaimState_CLAIM_STATE_OFFER_PENDING,
	trust.StateEscalated:        trustv1.ClaimState_CLAIM_STATE_ESCALATED,
	trust.StateReturnAuthorised: trustv1.ClaimState_CLAIM_STATE_RETURN_AUTHORISED,
	trust.StateReturnInTransit:  trustv1.ClaimState_CLAIM_STATE_RETURN_IN_TRANSIT,
	trust.StateRefunded:         trustv1.ClaimState_CLAIM_STATE_REFUNDED,
	trust.StateRejected:         trustv1.ClaimState_CLAIM_STATE_REJECTED,
	trust.StateWithdrawn:        trustv1.ClaimState_CLAIM_STATE_WITHDRAWN,
}

func claimProto(c *trust.Claim) *auditv1.ReplayedClaim {
	return &auditv1.ReplayedClaim{ClaimId: c.ID, FulfilmentId: c.FulfilmentID, VendorId: c.VendorID, Reason: c.Reason,
		State: claimStates[c.State], ClaimedAmount: moneyOrNil(c.Claimed), RefundedAmount: moneyOrNil(c.Refunded),
		OpenTime: stamp(c.OpenTime), UpdateTime: stamp(c.UpdateTime)}
}

func moneyProto(m *domain.Money) *auditv1.ReplayedMoney {
	if m == nil {
		return nil
	}
	amt := func(minor int64) *typev1.Money { return &typev1.Money{CurrencyCode: m.Currency, AmountMinor: minor} }
	out := &auditv1.ReplayedMoney{Captured: amt(m.Captured), Escrow: amt(m.Escrow), Pending: amt(m.Pending),
		Held: amt(m.Held), Released: amt(m.Released), Refunded: amt(m.Refunded)}
	for _, p := range m.Parts {
		out.Parts = append(out.Parts, &auditv1.ReplayedPartMoney{VendorId: p.VendorID, Stage: p.Stage,
			OpenClaimIds: p.OpenClaims, ReturnWindowCloseTime: stamp(p.CloseTime), Refunded: amt(p.Refunded)})
	}
	for _, a := range m.Accounts {
		out.Accounts = append(out.Accounts, &auditv1.AccountAmount{Account: a.Account, Amount: amt(a.Minor)})
	}
	return out
}

func moneyOrNil(m money.Money) *typev1.Money {
	if m.Currency == "" {
		return nil
	}
	return m.ToProto()
}

func stamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
