package grpcapi

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/trust/app"
	"github.com/custody/custody/services/trust/domain"
)

// states maps the API's claim states (and the unset filter) to the domain's.
var states = map[trustv1.ClaimState]domain.State{
	trustv1.ClaimState_CLAIM_STATE_UNSPECIFIED:       domain.StateNone,
	trustv1.ClaimState_CLAIM_STATE_AWAITING_VENDOR:   domain.StateAwaitingVendor,
	trustv1.ClaimState_CLAIM_STATE_OFFER_PENDING:     domain.StateOfferPending,
	trustv1.ClaimState_CLAIM_STATE_ESCALATED:         domain.StateEscalated,
	trustv1.ClaimState_CLAIM_STATE_RETURN_AUTHORISED: domain.StateReturnAuthorised,
	trustv1.ClaimState_CLAIM_STATE_RETURN_IN_TRANSIT: domain.StateReturnInTransit,
	trustv1.ClaimState_CLAIM_STATE_REFUNDED:          domain.StateRefunded,
	trustv1.ClaimState_CLAIM_STATE_REJECTED:          domain.StateRejected,
	trustv1.ClaimState_CLAIM_STATE_WITHDRAWN:         domain.StateWithdrawn,
}

var stateProtos = func() map[domain.State]trustv1.ClaimState {
	m := map[domain.State]trustv1.ClaimState{}
	for p, d := range states {
		m[d] = p
	}
	return m
}()

// tiersFrom maps the API's tiers (and the unset filter) to the domain's.
var tiersFrom = map[trustv1.TrustTier]domain.Tier{
	trustv1.TrustTier_TRUST_TIER_UNSPECIFIED: "",
	trustv1.TrustTier_TRUST_TIER_GOLD:        domain.TierGold,
	trustv1.TrustTier_TRUST_TIER_SILVER:      domain.TierSilver,
	trustv1.TrustTier_TRUST_TIER_STANDARD:    domain.TierStandard,
	trustv1.TrustTier_TRUST_TIER_WATCH:       domain.TierWatch,
}

var tierProtos = func() map[domain.Tier]trustv1.TrustTier {
	m := map[domain.Tier]trustv1.TrustTier{}
	for p, d := range tiersFrom {
		m[d] = p
	}
	return m
}()

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// claimProto is the wire form of a claim; event messages are shared with
// the stored history (they are never changed).
func claimProto(v app.ClaimView) *trustv1.Claim {
	c := v.Claim
	out := &trustv1.Claim{
		ClaimId: c.ID, OrderId: c.OrderID, FulfilmentId: c.FulfilmentID, VendorId: c.VendorID, BuyerId: c.BuyerID,
		Reason: c.Reason, Evidence: c.Evidence, ClaimedAmount: c.Claimed.ToProto(), State: stateProtos[c.State],
		OpenTime: ts(c.OpenTime), DueTime: ts(c.DueAt), Assessments: c.Assessments, Responses: c.Responses,
		Escalations: c.Escalations, Resolution: c.Resolution, Refunds: c.Refunds, RefundedAmount: c.Refunded.ToProto(),
		Closed: c.Closed, UpdateTime: ts(c.UpdateTime), Revision: v.Revision,
	}
	if !c.DueAt.IsZero() {
		out.DueAction = domain.DueAction(c.State)
	}
	for _, l := range c.Lines {
		out.Lines = append(out.Lines, &trustv1.ClaimLine{LineId: l.LineID, SkuId: l.SKUID, Quantity: l.Quantity, Amount: l.Amount.ToProto()})
	}
	if c.Offer.Currency != "" && c.Offer.Minor > 0 {
		out.OfferedAmount = c.Offer.ToProto()
	}
	if a := c.ReturnAuthorised; a != nil {
		out.Return = &trustv1.ClaimReturn{ReturnId: a.GetReturnId(), Authorised: a, Shipped: c.ReturnShipped, Received: c.ReturnReceived}
	}
	return out
}

func trustProto(v domain.VendorTrust) *trustv1.VendorTrust {
	b := v.Breakdown
	return &trustv1.VendorTrust{
		VendorId: v.VendorID, Score: v.Score, Tier: tierProtos[v.Tier], Counts: v.Counts.Proto(),
		Breakdown: &trustv1.ScoreBreakdown{OnTimeBps: int32(b.OnTime), TrackingBps: int32(b.Tracking), DeliveryBps: int32(b.Delivery),
			ClaimsBps: int32(b.Claims), ResponseBps: int32(b.Response), CounterfeitPenalty: int32(b.CounterfeitPenalty)},
		UpdateTime: ts(v.UpdateTime), Revision: v.Revision,
	}
}
