package trust_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/trust/app"
	"github.com/custody/custody/services/trust/domain"
)

// trustOf is the comparable part of a vendor's trust.
type trustOf struct {
	score  int32
	tier   string
	counts domain.Counts
}

func fromProto(v *trustv1.VendorTrust) trustOf {
	return trustOf{score: v.GetScore(), tier: v.GetTier().String(), counts: domain.CountsFromProto(v.GetCounts())}
}

var tierNames = map[domain.Tier]string{
	domain.TierGold: trustv1.TrustTier_TRUST_TIER_GOLD.String(), domain.TierSilver: trustv1.TrustTier_TRUST_TIER_SILVER.String(),
	domain.TierStandard: trustv1.TrustTier_TRUST_TIER_STANDARD.String(), domain.TierWatch: trustv1.TrustTier_TRUST_TIER_WATCH.String(),
}

func fromDomain(v domain.VendorTrust) trustOf {
	return trustOf{score: v.Score, tier: tierNames[v.Tier], counts: v.Counts}
}

// liveTrust lists every vendor's trust from the running process's
// projection, page by page.
func liveTrust(t *testing.T) map[string]trustOf {
	t.Helper()
	out := map[string]trustOf{}
	req := &trustv1.ListVendorTrustRequest{PageSize: 7}
	for {
		resp, err := shared.as(t, "platform").ListVendorTrust(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range resp.GetVendors() {
			if _, dup := out[v.GetVendorId()]; dup {
				t.Fatalf("vendor %s listed twice", v.GetVendorId())
			}
			out[v.GetVendorId()] = fromProto(v)
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			return out
		}
	}
}

// Rebuilding the trust projection from the store gives the same scores:
// the live projection, every vendor's aggregate, a projection rebuilt from
// the trust store, a recount from the fulfilment and claim facts
// themselves, and the projection of a restarted process all agree.
func TestRebuildingTrustGivesTheSameScores(t *testing.T) {
	e := shared
	// A varied history for a few vendors (on top of what other tests left).
	for i := range 3 {
		vendor := uniq("v")
		if i == 1 {
			vendor = uniq("acme.eu_v") // not a plain stream id: escaped
		}
		for range 3 + i {
			e.delivered(t, uniq("b"), vendor, nil, orderLine{1, 1200})
		}
		// A lost parcel.
		lost := e.confirm(t, uniq("b"), vendor, orderLine{1, 900})
		sh := e.ship(t, lost, nil)
		e.emit(t, e.fulfilment, "fulfilment-"+lost.fulfilmentID, &fulfilmentv1.DeliveryFailed{FulfilmentId: lost.fulfilmentID,
			OrderId: lost.orderID, VendorId: vendor, ShipmentId: sh.id, Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_LOST,
			CarrierEventId: uniq("c"), FailTime: e.now()})
		// A missed ship-by deadline, recorded twice (grace, then cancel).
		late := e.confirm(t, uniq("b"), vendor, orderLine{1, 900})
		for _, action := range []string{"grace", "cancel"} {
			e.emit(t, e.fulfilment, "fulfilment-"+late.fulfilmentID, &fulfilmentv1.ShipByDeadlineMissed{FulfilmentId: late.fulfilmentID,
				OrderId: late.orderID, VendorId: vendor, ShipByTime: timestamppb.New(e.clock.Now()), Action: action})
		}
		// A damaged claim the vendor contests after a day and support rejects.
		buyer := uniq("b")
		s := e.delivered(t, buyer, vendor, nil, orderLine{1, 700})
		resp, err := e.as(t, "buyer:"+buyer).OpenClaim(t.Context(), &trustv1.OpenClaimRequest{RequestId: uniq("r"), OrderId: s.orderID,
			Reason: trustv1.ClaimReason_CLAIM_REASON_DAMAGED, Lines: claimLines("1", 1), Evidence: &trustv1.Evidence{Sha256: []string{photo}}})
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Duration(i+1) * 10 * time.Hour)
		id := resp.GetClaim().GetClaimId()
		if _, err := e.as(t, "vendor:"+vendor).RespondToClaim(t.Context(), &trustv1.RespondToClaimRequest{RequestId: uniq("r"), ClaimId: id,
			Response: trustv1.VendorResponse_VENDOR_RESPONSE_CONTEST, Evidence: &trustv1.Evidence{Text: "it left intact"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.as(t, "support").ResolveClaim(t.Context(), &trustv1.ResolveClaimRequest{RequestId: uniq("r"), ClaimId: id,
			Decision: trustv1.ClaimDecision_CLAIM_DECISION_REJECT, Rationale: "packing photos show it intact"}); err != nil {
			t.Fatal(err)
		}
	}
	e.settled(t)

	live := liveTrust(t)
	if len(live) < 3 {
		t.Fatalf("%d vendors", len(live))
	}
	rebuilt, err := app.ProjectTrust(t.Context(), e.trust)
	if err != nil {
		t.Fatal(err)
	}
	recount, err := app.RecountTrust(t.Context(), e.fulfilment, e.trust)
	if err != nil {
		t.Fatal(err)
	}
	projected := rebuilt.VendorTrust()
	if len(projected) != len(live) || len(recount) != len(live) {
		t.Fatalf("%d vendors live, %d rebuilt, %d recounted", len(live), len(projected), len(recount))
	}
	for vendor, want := range live {
		resp, err := e.as(t, "support").GetVendorTrust(t.Context(), &trustv1.GetVendorTrustRequest{VendorId: vendor})
		if err != nil {
			t.Fatal(err)
		}
		for name, got := range map[string]trustOf{
			"aggregate": fromProto(resp.GetTrust()), "rebuilt projection": fromDomain(projected[vendor]), "recount": fromDomain(recount[vendor]),
		} {
			if got != want {
				t.Errorf("vendor %s: %s %+v, live projection %+v", vendor, name, got, want)
			}
		}
		if s, tier, _ := domain.Score(want.counts); s != want.score || tierNames[tier] != want.tier {
			t.Errorf("vendor %s: live score %d %s is not Score(counts) = %d %s", vendor, want.score, want.tier, s, tier)
		}
	}

	e.restart(t)
	after := liveTrust(t)
	if fmt.Sprint(after) != fmt.Sprint(live) {
		t.Fatalf("after a restart the projection differs:\n%v\n%v", after, live)
	}
}
