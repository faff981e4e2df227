package grpcapi

import (
	"github.com/custody/custody/pkg/protoconv"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/trust/app"
	"github.com/custody/custody/services/trust/domain"
)

// states maps the domain's claim states to the API's (and StateNone to
// the unset filter).
var states = protoconv.NewEnum(map[domain.State]trustv1.ClaimState{
	domain.StateNone:             trustv1.ClaimState_CLAIM_STATE_UNSPECIFIED,
	domain.StateAwaitingVendor:   trustv1.ClaimState_CLAIM_STATE_AWAITING_VENDOR,
	domain.StateOfferPending:     trustv1.ClaimState_CLAIM_STATE_OFFER_PENDING,
	domain.StateEscalated:        trustv1.ClaimState_CLAIM_STATE_ESCALATED,
	domain.StateReturnAuthorised: trustv1.ClaimState_CLAIM_STATE_RETURN_AUTHORISED,
	domain.StateReturnInTransit:  trustv1.ClaimState_CLAIM_STATE_RETURN_IN_TRANSIT,
	domain.StateRefunded:         trustv1.ClaimState_CLAIM_STATE_REFUNDED,
	domain.StateRejected:         trustv1.ClaimState_CLAIM_STATE_REJECTED,
	domain.StateWithdrawn:        trustv1.ClaimState_CLAIM_STATE_WITHDRAWN,
})

// ClaimStateProto is the API's state of a claim in state; the audit's
// replay shows claims the same way.
func ClaimStateProto(state domain.State) trustv1.ClaimState { return states.Wire(state) }

// tiers maps the domain's tiers to the API's (and no tier to the unset
// filter).
var tiers = protoconv.NewEnum(map[domain.Tier]trustv1.TrustTier{
	"":                  trustv1.TrustTier_TRUST_TIER_UNSPECIFIED,
	domain.TierGold:     trustv1.TrustTier_TRUST_TIER_GOLD,
	domain.TierSilver:   trustv1.TrustTier_TRUST_TIER_SILVER,
	domain.TierStandard: trustv1.TrustTier_TRUST_TIER_STANDARD,
	domain.TierWatch:    trustv1.TrustTier_TRUST_TIER_WATCH,
})

// responses maps the API's vendor responses to the domain's.
var responses = protoconv.NewEnum(map[domain.Response]trustv1.VendorResponse{
	domain.ResponseAccept:  trustv1.VendorResponse_VENDOR_RESPONSE_ACCEPT_REFUND,
	domain.ResponseOffer:   trustv1.VendorResponse_VENDOR_RESPONSE_OFFER_PARTIAL_REFUND,
	domain.ResponseReturn:  trustv1.VendorResponse_VENDOR_RESPONSE_REQUEST_RETURN,
	domain.ResponseContest: trustv1.VendorResponse_VENDOR_RESPONSE_CONTEST,
})

// decisions maps the API's claim decisions to the domain's.
var decisions = protoconv.NewEnum(map[domain.Decision]trustv1.ClaimDecision{
	domain.DecisionRefundFull:       trustv1.ClaimDecision_CLAIM_DECISION_REFUND_FULL,
	domain.DecisionRefundPartial:    trustv1.ClaimDecision_CLAIM_DECISION_REFUND_PARTIAL,
	domain.DecisionReturnThenRefund: trustv1.ClaimDecision_CLAIM_DECISION_RETURN_THEN_REFUND,
	domain.DecisionReject:           trustv1.ClaimDecision_CLAIM_DECISION_REJECT,
})

// claimProto is the wire form of a claim; event messages are shared with
// the stored history (they are never changed).
func claimProto(v app.ClaimView) *trustv1.Claim {
	c := v.Claim
	out := &trustv1.Claim{
		ClaimId: c.ID, OrderId: c.OrderID, FulfilmentId: c.FulfilmentID, VendorId: c.VendorID, BuyerId: c.BuyerID,
		Reason: c.Reason, Evidence: c.Evidence, ClaimedAmount: c.Claimed.ToProto(), State: states.Wire(c.State),
		OpenTime: protoconv.Timestamp(c.OpenTime), DueTime: protoconv.Timestamp(c.DueAt), Assessments: c.Assessments, Responses: c.Responses,
		Escalations: c.Escalations, Resolution: c.Resolution, Refunds: c.Refunds, RefundedAmount: c.Refunded.ToProto(),
		Closed: c.Closed, UpdateTime: protoconv.Timestamp(c.UpdateTime), Revision: v.Revision,
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
		VendorId: v.VendorID, Score: v.Score, Tier: tiers.Wire(v.Tier), Counts: v.Counts.Proto(),
		Breakdown: &trustv1.ScoreBreakdown{OnTimeBps: int32(b.OnTime), TrackingBps: int32(b.Tracking), DeliveryBps: int32(b.Delivery),
			ClaimsBps: int32(b.Claims), ResponseBps: int32(b.Response), CounterfeitPenalty: int32(b.CounterfeitPenalty)},
		UpdateTime: protoconv.Timestamp(v.UpdateTime), Revision: v.Revision,
	}
}
