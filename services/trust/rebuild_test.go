package trust_test

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/platform/platformtest"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/trust"
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
		resp, err := as(t, "platform").ListVendorTrust(t.Context(), req)
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
// the live projection, every vendor's aggregate, the projection `custody
// rebuild` folds (platform.Rebuild of the module), a recount from the
// fulfilment and claim facts themselves, and the projection of a restarted
// process all agree.
func TestRebuildingTrustGivesTheSameScores(t *testing.T) {
	// A varied history for a few vendors (on top of what other tests left).
	for i := range 3 {
		vendor := platformtest.ID("v")
		if i == 1 {
			vendor = platformtest.ID("acme.eu_v") // not a plain stream id: escaped
		}
		for range 3 + i {
			delivered(t, platformtest.ID("b"), vendor, nil, orderLine{1, 1200})
		}
		// A lost parcel.
		lost := confirm(t, platformtest.ID("b"), vendor, orderLine{1, 900})
		sh := ship(t, lost, nil)
		shared.Emit(t, "fulfilment", "fulfilment-"+lost.fulfilmentID, &fulfilmentv1.DeliveryFailed{FulfilmentId: lost.fulfilmentID,
			OrderId: lost.orderID, VendorId: vendor, ShipmentId: sh.id, Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_LOST,
			CarrierEventId: platformtest.ID("c"), FailTime: now()})
		// A missed ship-by deadline, recorded twice (grace, then cancel).
		late := confirm(t, platformtest.ID("b"), vendor, orderLine{1, 900})
		for _, action := range []string{"grace", "cancel"} {
			shared.Emit(t, "fulfilment", "fulfilment-"+late.fulfilmentID, &fulfilmentv1.ShipByDeadlineMissed{FulfilmentId: late.fulfilmentID,
				OrderId: late.orderID, VendorId: vendor, ShipByTime: timestamppb.New(clk.Now()), Action: action})
		}
		// A damaged claim the vendor contests after a day and support rejects.
		buyer := platformtest.ID("b")
		s := delivered(t, buyer, vendor, nil, orderLine{1, 700})
		id := openClaim(t, s, trustv1.ClaimReason_CLAIM_REASON_DAMAGED, photoEvidence()).GetClaimId()
		clk.Advance(time.Duration(i+1) * 10 * time.Hour)
		if _, err := as(t, "vendor:"+vendor).RespondToClaim(t.Context(), &trustv1.RespondToClaimRequest{RequestId: platformtest.ID("r"), ClaimId: id,
			Response: trustv1.VendorResponse_VENDOR_RESPONSE_CONTEST, Evidence: &trustv1.Evidence{Text: "it left intact"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := as(t, "support").ResolveClaim(t.Context(), &trustv1.ResolveClaimRequest{RequestId: platformtest.ID("r"), ClaimId: id,
			Decision: trustv1.ClaimDecision_CLAIM_DECISION_REJECT, Rationale: "packing photos show it intact"}); err != nil {
			t.Fatal(err)
		}
	}
	shared.Settled(t)

	live := liveTrust(t)
	if len(live) < 3 {
		t.Fatalf("%d vendors", len(live))
	}
	var rebuilt *app.Service
	deps := platform.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NATS: shared.NATS, Clock: clk, Replicas: 1}
	rep, err := platform.Rebuild(t.Context(), deps, trust.ModuleBuilt(func(s *app.Service) { rebuilt = s }), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Broken) != 0 || len(rep.Projections) != 3 || rep.Events == 0 {
		t.Fatalf("rebuild %+v; want 3 read models folded, every hash chain intact", rep)
	}
	recount, err := app.RecountTrust(t.Context(), shared.Store(t, "fulfilment"), shared.Store(t, trust.Name))
	if err != nil {
		t.Fatal(err)
	}
	projected := rebuilt.ReadModel().VendorTrust()
	if len(projected) != len(live) || len(recount) != len(live) {
		t.Fatalf("%d vendors live, %d rebuilt, %d recounted", len(live), len(projected), len(recount))
	}
	for vendor, want := range live {
		resp, err := as(t, "support").GetVendorTrust(t.Context(), &trustv1.GetVendorTrustRequest{VendorId: vendor})
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

	shared.Restart(t)
	after := liveTrust(t)
	if fmt.Sprint(after) != fmt.Sprint(live) {
		t.Fatalf("after a restart the projection differs:\n%v\n%v", after, live)
	}
}
