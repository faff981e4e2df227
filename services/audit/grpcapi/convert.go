package grpcapi

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/money"
	"github.com/custody/custody/pkg/protoconv"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/audit/app"
	"github.com/custody/custody/services/audit/domain"
	fulfilment "github.com/custody/custody/services/fulfilment/domain"
	fulfilmentgrpc "github.com/custody/custody/services/fulfilment/grpcapi"
	order "github.com/custody/custody/services/order/domain"
	ordergrpc "github.com/custody/custody/services/order/grpcapi"
	trust "github.com/custody/custody/services/trust/domain"
	trustgrpc "github.com/custody/custody/services/trust/grpcapi"
)

func timelineEventProto(e domain.TimelineEvent) *auditv1.TimelineEvent {
	return &auditv1.TimelineEvent{
		Service: e.Service, Stream: e.Stream, Revision: e.Revision, Position: e.Position, EventId: e.EventID,
		Type: e.Type, RecordTime: protoconv.Timestamp(e.RecordedAt), Actor: e.Actor, CorrelationId: e.CorrelationID,
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

// orderProto is the order as the order service shows it (full view).
func orderProto(o order.Order, rev uint64) *orderv1.Order {
	if o.Status == order.StatusNone {
		return &orderv1.Order{OrderId: o.ID}
	}
	return ordergrpc.OrderProto(o, rev)
}

func fulfilmentProto(fa domain.FulfilmentAt) *auditv1.ReplayedFulfilment {
	f := fa.Fulfilment
	out := &auditv1.ReplayedFulfilment{FulfilmentId: f.ID, VendorId: f.VendorID, State: fulfilmentgrpc.StateProto(f.Status()),
		ShipByTime: protoconv.Timestamp(f.ShipBy), CancelReason: f.CancelReason, Revision: fa.Revision}
	if d, ok := f.Delivery(); ok {
		out.DeliverTime = protoconv.Timestamp(d.Time)
	}
	for _, s := range f.Shipments {
		p := s.Progress()
		rs := &auditv1.ReplayedShipment{ShipmentId: s.ID, Carrier: s.Carrier, TrackingNumber: s.TrackingNumber,
			Lines: fulfilment.LinesProto(s.Lines), Status: p.Status, ShipTime: protoconv.Timestamp(s.ShipTime),
			ExpectedDeliveryTime: protoconv.Timestamp(s.ExpectedDelivery), TrackingEventCount: int32(len(s.Scans))}
		if p.Delivery != nil {
			rs.DeliverTime = protoconv.Timestamp(p.Delivery.OccurTime)
		}
		out.Shipments = append(out.Shipments, rs)
	}
	return out
}

func claimProto(c *trust.Claim) *auditv1.ReplayedClaim {
	return &auditv1.ReplayedClaim{ClaimId: c.ID, FulfilmentId: c.FulfilmentID, VendorId: c.VendorID, Reason: c.Reason,
		State: trustgrpc.ClaimStateProto(c.State), ClaimedAmount: moneyOrNil(c.Claimed), RefundedAmount: moneyOrNil(c.Refunded),
		OpenTime: protoconv.Timestamp(c.OpenTime), UpdateTime: protoconv.Timestamp(c.UpdateTime)}
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
			OpenClaimIds: p.OpenClaims, ReturnWindowCloseTime: protoconv.Timestamp(p.CloseTime), Refunded: amt(p.Refunded)})
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
