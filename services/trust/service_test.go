package trust_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/personal"
	"github.com/custody/custody/pkg/platform/platformtest"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
)

var photo = fmt.Sprintf("%064x", 42)

func claimLines(ls ...any) []*trustv1.ClaimLineRequest {
	var out []*trustv1.ClaimLineRequest
	for i := 0; i < len(ls); i += 2 {
		out = append(out, &trustv1.ClaimLineRequest{LineId: ls[i].(string), Quantity: int64(ls[i+1].(int))})
	}
	return out
}

// waitTrust polls the vendor's trust (as support) until ok holds.
func waitTrust(t testing.TB, vendor string, ok func(*trustv1.VendorTrust) error) *trustv1.VendorTrust {
	t.Helper()
	return platformtest.Await(t, "vendor "+vendor+"'s trust", func() (*trustv1.VendorTrust, error) {
		resp, err := as(t, "support").GetVendorTrust(t.Context(), &trustv1.GetVendorTrustRequest{VendorId: vendor})
		return resp.GetTrust(), err
	}, ok)
}

// (a) A parcel never scanned as delivered is refunded automatically once
// its expected delivery has passed, and the decision names what it rests
// on.
func TestNotReceivedIsRefundedAfterTheExpectedDelivery(t *testing.T) {
	buyer, vendor := platformtest.ID("b"), platformtest.ID("v")
	s := confirm(t, buyer, vendor, orderLine{2, 1500}, orderLine{1, 800})
	sh := ship(t, s, nil)
	clk.Advance(time.Hour)
	pickedUp := scan(t, s, sh, fulfilmentv1.TrackingStatus_TRACKING_STATUS_PICKED_UP, nil)
	clk.Advance(day)
	inTransit := scan(t, s, sh, fulfilmentv1.TrackingStatus_TRACKING_STATUS_IN_TRANSIT, nil)
	client := as(t, "buyer:"+buyer)
	req := &trustv1.OpenClaimRequest{RequestId: platformtest.ID("r"), OrderId: s.orderID, Reason: trustv1.ClaimReason_CLAIM_REASON_NOT_RECEIVED,
		Lines: claimLines("1", 2, "2", 1)}

	// Before the expected delivery: too early, and nothing is written.
	_, err := client.OpenClaim(t.Context(), req)
	platformtest.WantReason(t, err, codes.FailedPrecondition, "CLAIM_TOO_EARLY")
	if evs := claimEvents(t, s.orderID); len(evs) != 0 {
		t.Fatalf("a refused claim wrote %v", eventNames(evs))
	}

	clk.Advance(2*day + time.Hour) // past the expected delivery (ship + 3 days)
	resp, err := client.OpenClaim(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	c := resp.GetClaim()
	if c.GetState() != trustv1.ClaimState_CLAIM_STATE_REFUNDED || c.GetBuyerId() != buyer || c.GetVendorId() != vendor ||
		c.GetFulfilmentId() != s.fulfilmentID || c.GetClaimedAmount().GetAmountMinor() != 3800 || c.GetRefundedAmount().GetAmountMinor() != 3800 {
		t.Fatalf("claim %v", c)
	}
	a := c.GetAssessments()[0]
	if a.GetOutcome() != "auto_refund" || !slices.Equal(a.GetReliedOnEventIds(), []string{sh.eventID, pickedUp, inTransit}) {
		t.Fatalf("assessment %v; want auto_refund relying on %v", a, []string{sh.eventID, pickedUp, inTransit})
	}
	if r := c.GetResolution(); r.GetDecidedBy() != "service:trust" || r.GetDecision() != "refund_full" {
		t.Fatalf("resolution %v", r)
	}
	if r := c.GetRefunds(); len(r) != 1 || r[0].GetAmount().GetAmountMinor() != 3800 || r[0].GetOrderCaptured().GetAmountMinor() != 3800 {
		t.Fatalf("refunds %v", r)
	}
	want := []string{"ClaimOpened", "ClaimAssessed", "ClaimResolved", "RefundIssued", "ClaimClosed"}
	if got := eventNames(claimEvents(t, s.orderID)); !slices.Equal(got, want) {
		t.Fatalf("claims stream %v, want %v", got, want)
	}

	// The same request again returns the same claim and writes nothing.
	again, err := client.OpenClaim(t.Context(), req)
	if err != nil || again.GetClaim().GetClaimId() != c.GetClaimId() || len(claimEvents(t, s.orderID)) != len(want) {
		t.Fatalf("repeat: %v, %v", again, err)
	}
	// Nothing is left to claim on those lines.
	_, err = client.OpenClaim(t.Context(), &trustv1.OpenClaimRequest{RequestId: platformtest.ID("r"), OrderId: s.orderID,
		Reason: trustv1.ClaimReason_CLAIM_REASON_NOT_RECEIVED, Lines: claimLines("2", 1)})
	platformtest.WantReason(t, err, codes.FailedPrecondition, "LINE_FULLY_REFUNDED")

	// The vendor's history counts it.
	waitTrust(t, vendor, func(v *trustv1.VendorTrust) error {
		c := v.GetCounts()
		if c.GetFulfilments() != 1 || c.GetShipments() != 1 || c.GetShippedOnTime() != 1 || c.GetTrackedShipments() != 1 ||
			c.GetClaims() != 1 || c.GetClaimsLost() != 1 || c.GetDelivered() != 0 {
			return fmt.Errorf("counts %v", c)
		}
		return nil
	})
}

// (b) A counterfeit claim whose serial does not match the packing evidence
// goes to support with the comparison; support confirms and refunds; the
// vendor's score falls by at least a tier.
func TestCounterfeitClaimConfirmedBySupport(t *testing.T) {
	vendor := platformtest.ID("v")
	// A clean history first: the vendor climbs from the start.
	for range 12 {
		delivered(t, platformtest.ID("b"), vendor, nil, orderLine{1, 1000})
	}
	buyer := platformtest.ID("b")
	s := confirm(t, buyer, vendor, orderLine{1, 25000}, orderLine{1, 500})
	sh := ship(t, s, map[string][]string{"1": {"SN-A1"}, "2": {"SN-B1"}})
	scan(t, s, sh, fulfilmentv1.TrackingStatus_TRACKING_STATUS_PICKED_UP, nil)
	clk.Advance(2 * day)
	deliveredScan, deliveredID := deliver(t, s, sh, true)
	shared.Settled(t)
	before := waitTrust(t, vendor, func(v *trustv1.VendorTrust) error {
		if v.GetCounts().GetDelivered() != 13 {
			return fmt.Errorf("counts %v", v.GetCounts())
		}
		return nil
	})
	if before.GetTier() != trustv1.TrustTier_TRUST_TIER_SILVER {
		t.Fatalf("a vendor with 13 clean orders is %v (%d)", before.GetTier(), before.GetScore())
	}
	// The vendor sees its own trust; another vendor does not.
	if _, err := as(t, "vendor:"+vendor).GetVendorTrust(t.Context(), &trustv1.GetVendorTrustRequest{VendorId: vendor}); err != nil {
		t.Fatal(err)
	}
	_, err := as(t, "vendor:"+platformtest.ID("v")).GetVendorTrust(t.Context(), &trustv1.GetVendorTrustRequest{VendorId: vendor})
	platformtest.WantCode(t, err, codes.PermissionDenied)

	clk.Advance(day)
	c := openClaim(t, s, trustv1.ClaimReason_CLAIM_REASON_COUNTERFEIT,
		&trustv1.Evidence{SerialNumbers: []string{"SN-FAKE-9"}, Sha256: []string{photo}, Text: "logo is wrong"})
	a := c.GetAssessments()[0]
	if c.GetState() != trustv1.ClaimState_CLAIM_STATE_ESCALATED || a.GetOutcome() != "to_support" ||
		!slices.Equal(a.GetUnmatchedSerials(), []string{"SN-FAKE-9"}) || len(a.GetMatchedSerials()) != 0 ||
		!slices.Contains(a.GetReliedOnEventIds(), sh.eventID) || !slices.Contains(a.GetReliedOnEventIds(), deliveredID) ||
		!slices.Contains(a.GetReliedOnEventIds(), deliveredScan) {
		t.Fatalf("claim %v", c)
	}
	if len(c.GetEscalations()) != 1 || !strings.Contains(c.GetEscalations()[0].GetReason(), "SN-FAKE-9") {
		t.Fatalf("escalations %v", c.GetEscalations())
	}

	// Only support decides; the vendor may contest with evidence meanwhile.
	resolve := &trustv1.ResolveClaimRequest{RequestId: platformtest.ID("r"), ClaimId: c.GetClaimId(), Decision: trustv1.ClaimDecision_CLAIM_DECISION_REFUND_FULL,
		Rationale: "serial not packed; photos show a replica", CounterfeitConfirmed: true}
	_, err = as(t, "vendor:"+vendor).ResolveClaim(t.Context(), resolve)
	platformtest.WantCode(t, err, codes.PermissionDenied)
	_, err = as(t, "buyer:"+buyer).ResolveClaim(t.Context(), resolve)
	platformtest.WantCode(t, err, codes.PermissionDenied)
	if _, err := as(t, "vendor:"+vendor).RespondToClaim(t.Context(), &trustv1.RespondToClaimRequest{RequestId: platformtest.ID("r"),
		ClaimId: c.GetClaimId(), Response: trustv1.VendorResponse_VENDOR_RESPONSE_CONTEST,
		Evidence: &trustv1.Evidence{Text: "we only sell originals", References: []string{"invoice-77"}}}); err != nil {
		t.Fatal(err)
	}
	done, err := as(t, "support").ResolveClaim(t.Context(), resolve)
	if err != nil {
		t.Fatal(err)
	}
	c = done.GetClaim()
	if c.GetState() != trustv1.ClaimState_CLAIM_STATE_REFUNDED || !c.GetResolution().GetCounterfeitConfirmed() ||
		c.GetResolution().GetDecidedBy() != "support" || c.GetRefunds()[0].GetAmount().GetAmountMinor() != 25000 {
		t.Fatalf("claim %v", c)
	}
	// The decision again is answered as the first; its request_id for
	// another decision is refused (AIP-155) and writes nothing.
	n := len(claimEvents(t, s.orderID))
	if again, err := as(t, "support").ResolveClaim(t.Context(), resolve); err != nil || again.GetClaim().GetRevision() != c.GetRevision() {
		t.Fatalf("the decision again: %v, %v", again, err)
	}
	otherDecision := proto.Clone(resolve).(*trustv1.ResolveClaimRequest)
	otherDecision.Decision, otherDecision.CounterfeitConfirmed = trustv1.ClaimDecision_CLAIM_DECISION_REJECT, false
	_, err = as(t, "support").ResolveClaim(t.Context(), otherDecision)
	platformtest.WantField(t, err, "request_id")
	if after := len(claimEvents(t, s.orderID)); after != n {
		t.Fatalf("the repeat and the reused request_id wrote %d claim events", after-n)
	}

	after := waitTrust(t, vendor, func(v *trustv1.VendorTrust) error {
		if v.GetCounts().GetCounterfeitsConfirmed() != 1 || v.GetCounts().GetClaimsLost() != 1 || v.GetCounts().GetResponses() != 1 {
			return fmt.Errorf("counts %v", v.GetCounts())
		}
		return nil
	})
	if after.GetScore() > before.GetScore()-250 || after.GetTier() <= before.GetTier() || after.GetBreakdown().GetCounterfeitPenalty() != 250 {
		t.Fatalf("trust went from %d %v to %d %v", before.GetScore(), before.GetTier(), after.GetScore(), after.GetTier())
	}
}

// (c) A changed-mind return that comes back damaged is refunded per the
// policy (50%), and the units do not go back into stock.
func TestChangedMindReturnReceivedDamaged(t *testing.T) {
	buyer, vendor := platformtest.ID("b"), platformtest.ID("v")
	s := delivered(t, buyer, vendor, nil, orderLine{2, 4999})
	clk.Advance(3 * day)
	bc := as(t, "buyer:"+buyer)
	c := openClaim(t, s, trustv1.ClaimReason_CLAIM_REASON_CHANGED_MIND, nil)
	if c.GetState() != trustv1.ClaimState_CLAIM_STATE_RETURN_AUTHORISED || c.GetReturn().GetReturnId() == "" ||
		c.GetAssessments()[0].GetOutcome() != "return_authorised" || c.GetDueTime() == nil {
		t.Fatalf("claim %v", c)
	}
	ship := &trustv1.RecordReturnShipmentRequest{RequestId: platformtest.ID("r"), ClaimId: c.GetClaimId(), Carrier: "dhl", TrackingNumber: "RET-1"}
	_, err := as(t, "vendor:"+vendor).RecordReturnShipment(t.Context(), ship)
	platformtest.WantCode(t, err, codes.PermissionDenied)
	if resp, err := bc.RecordReturnShipment(t.Context(), ship); err != nil || resp.GetClaim().GetState() != trustv1.ClaimState_CLAIM_STATE_RETURN_IN_TRANSIT {
		t.Fatalf("return shipment: %v, %v", resp, err)
	}
	clk.Advance(2 * day)
	receive := &trustv1.ReceiveReturnRequest{RequestId: platformtest.ID("r"), ClaimId: c.GetClaimId(), Condition: trustv1.ReturnCondition_RETURN_CONDITION_DAMAGED,
		Note: "screen cracked"}
	_, err = bc.ReceiveReturn(t.Context(), receive)
	platformtest.WantCode(t, err, codes.PermissionDenied)
	got, err := as(t, "vendor:"+vendor).ReceiveReturn(t.Context(), receive)
	if err != nil {
		t.Fatal(err)
	}
	c = got.GetClaim()
	// 1 × 49.99 claimed; 50% is 24.99 (rounded down: never more than the rate gives).
	if c.GetState() != trustv1.ClaimState_CLAIM_STATE_REFUNDED || c.GetRefunds()[0].GetAmount().GetAmountMinor() != 2499 ||
		c.GetReturn().GetReceived().GetRestock() || c.GetReturn().GetReceived().GetCondition() != trustv1.ReturnCondition_RETURN_CONDITION_DAMAGED {
		t.Fatalf("claim %v", c)
	}
	want := []string{"ClaimOpened", "ClaimAssessed", "ReturnAuthorised", "ReturnShipped", "ReturnReceived", "RefundIssued", "ClaimClosed"}
	evs := claimEvents(t, s.orderID)
	if got := eventNames(evs); !slices.Equal(got, want) {
		t.Fatalf("claims stream %v, want %v", got, want)
	}
	rr := evs[4].(*trustv1.ReturnReceived)
	if rr.GetRestock() || rr.GetLines()[0].GetSkuId() != s.lines[0].GetSkuId() || rr.GetLines()[0].GetQuantity() != 1 {
		t.Fatalf("return received %v", rr)
	}
	// Receiving again is refused; the same request again is not.
	if again, err := as(t, "vendor:"+vendor).ReceiveReturn(t.Context(), receive); err != nil || again.GetClaim().GetRevision() != c.GetRevision() {
		t.Fatalf("repeat: %v, %v", again, err)
	}
	// A request_id reused for another request is refused (AIP-155),
	// naming request_id, and writes nothing.
	otherReceipt := proto.Clone(receive).(*trustv1.ReceiveReturnRequest)
	otherReceipt.Condition = trustv1.ReturnCondition_RETURN_CONDITION_AS_EXPECTED
	_, err = as(t, "vendor:"+vendor).ReceiveReturn(t.Context(), otherReceipt)
	platformtest.WantField(t, err, "request_id")
	otherParcel := proto.Clone(ship).(*trustv1.RecordReturnShipmentRequest)
	otherParcel.TrackingNumber = "RET-2"
	_, err = bc.RecordReturnShipment(t.Context(), otherParcel)
	platformtest.WantField(t, err, "request_id")
	if n := len(claimEvents(t, s.orderID)); n != len(want) {
		t.Fatalf("after the reused request_ids the claims stream has %d events, want %d", n, len(want))
	}
	receive.RequestId = platformtest.ID("r")
	_, err = as(t, "vendor:"+vendor).ReceiveReturn(t.Context(), receive)
	platformtest.WantReason(t, err, codes.FailedPrecondition, "CLAIM_CLOSED")
	// A change of mind does not count against the vendor.
	shared.Settled(t)
	if v := waitTrust(t, vendor, func(*trustv1.VendorTrust) error { return nil }); v.GetCounts().GetClaims() != 0 || v.GetCounts().GetClaimsLost() != 0 {
		t.Fatalf("counts %v", v.GetCounts())
	}
}

// The vendor's silence decides for the buyer when the response deadline
// passes — also when it passed while the service was down.
func TestVendorSilenceRefundsTheBuyerAfterARestart(t *testing.T) {
	buyer, vendor := platformtest.ID("b"), platformtest.ID("v")
	s := delivered(t, buyer, vendor, nil, orderLine{1, 3000})
	c := openClaim(t, s, trustv1.ClaimReason_CLAIM_REASON_DAMAGED, photoEvidence())
	if c.GetState() != trustv1.ClaimState_CLAIM_STATE_AWAITING_VENDOR || !c.GetDueTime().AsTime().Equal(clk.Now().Add(48*time.Hour)) {
		t.Fatalf("claim %v", c)
	}
	shared.Stop(t)
	clk.Advance(48*time.Hour + time.Minute)
	shared.Restart(t)
	platformtest.Eventually(t, "the claim refunded", func() error {
		got, err := as(t, "buyer:"+buyer).GetClaim(t.Context(), &trustv1.GetClaimRequest{ClaimId: c.GetClaimId()})
		if err != nil {
			return err
		}
		if c = got.GetClaim(); c.GetState() != trustv1.ClaimState_CLAIM_STATE_REFUNDED {
			return fmt.Errorf("claim is %v", c.GetState())
		}
		return nil
	})
	if r := c.GetResolution(); r.GetDecidedBy() != "service:trust" || !strings.Contains(r.GetRationale(), "did not respond") ||
		c.GetRefundedAmount().GetAmountMinor() != 3000 {
		t.Fatalf("claim %v", c)
	}
	// The answer revealed the rationale; the stream holds it sealed under
	// the buyer's key, as the refund's reason (issue 16).
	for _, e := range claimEvents(t, s.orderID) {
		var text, of string
		switch e := e.(type) {
		case *trustv1.ClaimResolved:
			text, of = e.GetRationale(), e.GetBuyerId()
		case *trustv1.RefundIssued:
			text, of = e.GetReason(), e.GetBuyerId()
		default:
			continue
		}
		if !personal.IsToken(text) || of != buyer {
			t.Errorf("%s: stored %q of buyer %q, want a token of %s", e.ProtoReflect().Descriptor().Name(), text, of, buyer)
		}
	}
}

// A partial offer, accepted by the buyer.
func TestPartialOfferAccepted(t *testing.T) {
	buyer, vendor := platformtest.ID("b"), platformtest.ID("v")
	s := delivered(t, buyer, vendor, nil, orderLine{1, 6000})
	id := openClaim(t, s, trustv1.ClaimReason_CLAIM_REASON_NOT_AS_DESCRIBED, photoEvidence()).GetClaimId()
	offer := &trustv1.RespondToClaimRequest{RequestId: platformtest.ID("r"), ClaimId: id, Response: trustv1.VendorResponse_VENDOR_RESPONSE_OFFER_PARTIAL_REFUND,
		OfferedAmount: eur(2000)}
	_, err := as(t, "vendor:"+platformtest.ID("v")).RespondToClaim(t.Context(), offer)
	platformtest.WantCode(t, err, codes.PermissionDenied)
	r, err := as(t, "vendor:"+vendor).RespondToClaim(t.Context(), offer)
	if err != nil || r.GetClaim().GetState() != trustv1.ClaimState_CLAIM_STATE_OFFER_PENDING || r.GetClaim().GetOfferedAmount().GetAmountMinor() != 2000 {
		t.Fatalf("offer: %v, %v", r, err)
	}
	a, err := as(t, "buyer:"+buyer).AnswerOffer(t.Context(), &trustv1.AnswerOfferRequest{RequestId: platformtest.ID("r"), ClaimId: id, Accept: true})
	if err != nil {
		t.Fatal(err)
	}
	if c := a.GetClaim(); c.GetState() != trustv1.ClaimState_CLAIM_STATE_REFUNDED || c.GetRefundedAmount().GetAmountMinor() != 2000 ||
		c.GetResolution().GetDecidedBy() != "buyer:"+buyer {
		t.Fatalf("claim %v", c)
	}
}

// Units per line, through the service: a claim for more units than the
// buyer still holds — in an open claim already, or cancelled before
// shipping (OrderLinesCancelled) — is refused with FailedPrecondition
// naming the line, and stores nothing.
func TestClaimsNameOnlyUnitsTheBuyerHolds(t *testing.T) {
	buyer, vendor := platformtest.ID("b"), platformtest.ID("v")
	bc := as(t, "buyer:"+buyer)
	s := delivered(t, buyer, vendor, nil, orderLine{3, 1000})
	open := func(s *sale, qty int) (*trustv1.OpenClaimResponse, error) {
		return bc.OpenClaim(t.Context(), &trustv1.OpenClaimRequest{RequestId: platformtest.ID("r"), OrderId: s.orderID,
			Reason: trustv1.ClaimReason_CLAIM_REASON_DAMAGED, Lines: claimLines("1", qty), Evidence: photoEvidence()})
	}
	first, err := open(s, 2)
	if err != nil || first.GetClaim().GetClaimedAmount().GetAmountMinor() != 2000 {
		t.Fatalf("first claim: %v, %v", first, err)
	}
	stored := len(claimEvents(t, s.orderID))
	_, err = open(s, 2)
	platformtest.WantReason(t, err, codes.FailedPrecondition, "CLAIM_ALREADY_OPEN")
	if !strings.Contains(status.Convert(err).Message(), "line 1") {
		t.Errorf("the refusal does not name the line: %v", err)
	}
	if n := len(claimEvents(t, s.orderID)); n != stored {
		t.Fatalf("a refused claim stored %d events", n-stored)
	}
	if _, err := open(s, 1); err != nil {
		t.Fatalf("the unit left: %v", err)
	}

	// One of three units cancelled before shipping; two shipped and delivered.
	c := confirm(t, buyer, vendor, orderLine{3, 1000})
	emit(t, "order", "order-"+c.orderID, &orderv1.OrderLinesCancelled{OrderId: c.orderID, Lines: []*orderv1.CancelledLine{
		{LineId: "1", SkuId: c.lines[0].GetSkuId(), VendorId: vendor, Quantity: 1, Amount: eur(1000)}},
		Refund: eur(1000), RefundedTotal: eur(1000), Reason: "out of stock", CancelledBy: "vendor:" + vendor, CancelTime: now()})
	c.lines[0].Quantity = 2 // what ships
	sh := ship(t, c, nil)
	deliver(t, c, sh, true)
	_, err = open(c, 3)
	platformtest.WantReason(t, err, codes.FailedPrecondition, "UNITS_CANCELLED")
	if n := len(claimEvents(t, c.orderID)); n != 0 {
		t.Fatalf("a refused claim stored %d events", n)
	}
	if _, err := open(c, 2); err != nil {
		t.Fatalf("the two units shipped: %v", err)
	}
}
