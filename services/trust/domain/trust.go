package domain

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
)

// Counts are the facts of a vendor's own history that its score is made
// of. Counts add up: a vendor's counts are the sum of the deltas of the
// events counted, in any order.
type Counts struct {
	Fulfilments           int64
	ShippedOnTime         int64
	DeadlinesMissed       int64
	TrackedShipments      int64
	Shipments             int64
	Delivered             int64
	DeliveryFailures      int64
	Claims                int64
	ClaimsLost            int64
	CounterfeitsConfirmed int64
	Responses             int64
	ResponseSeconds       int64
}

// Add returns c + d.
func (c Counts) Add(d Counts) Counts {
	return Counts{
		Fulfilments: c.Fulfilments + d.Fulfilments, ShippedOnTime: c.ShippedOnTime + d.ShippedOnTime,
		DeadlinesMissed: c.DeadlinesMissed + d.DeadlinesMissed, TrackedShipments: c.TrackedShipments + d.TrackedShipments,
		Shipments: c.Shipments + d.Shipments, Delivered: c.Delivered + d.Delivered, DeliveryFailures: c.DeliveryFailures + d.DeliveryFailures,
		Claims: c.Claims + d.Claims, ClaimsLost: c.ClaimsLost + d.ClaimsLost, CounterfeitsConfirmed: c.CounterfeitsConfirmed + d.CounterfeitsConfirmed,
		Responses: c.Responses + d.Responses, ResponseSeconds: c.ResponseSeconds + d.ResponseSeconds,
	}
}

// IsZero reports whether nothing is counted.
func (c Counts) IsZero() bool { return c == Counts{} }

// Proto is the wire form.
func (c Counts) Proto() *trustv1.TrustCounts {
	return &trustv1.TrustCounts{Fulfilments: c.Fulfilments, ShippedOnTime: c.ShippedOnTime, DeadlinesMissed: c.DeadlinesMissed,
		TrackedShipments: c.TrackedShipments, Shipments: c.Shipments, Delivered: c.Delivered, DeliveryFailures: c.DeliveryFailures,
		Claims: c.Claims, ClaimsLost: c.ClaimsLost, CounterfeitsConfirmed: c.CounterfeitsConfirmed, Responses: c.Responses,
		ResponseSeconds: c.ResponseSeconds}
}

// CountsFromProto reads the wire form.
func CountsFromProto(p *trustv1.TrustCounts) Counts {
	return Counts{Fulfilments: p.GetFulfilments(), ShippedOnTime: p.GetShippedOnTime(), DeadlinesMissed: p.GetDeadlinesMissed(),
		TrackedShipments: p.GetTrackedShipments(), Shipments: p.GetShipments(), Delivered: p.GetDelivered(),
		DeliveryFailures: p.GetDeliveryFailures(), Claims: p.GetClaims(), ClaimsLost: p.GetClaimsLost(),
		CounterfeitsConfirmed: p.GetCounterfeitsConfirmed(), Responses: p.GetResponses(), ResponseSeconds: p.GetResponseSeconds()}
}

// Tier is a band of scores.
type Tier string

// Tiers, best first.
const (
	TierGold     Tier = "gold"
	TierSilver   Tier = "silver"
	TierStandard Tier = "standard"
	TierWatch    Tier = "watch"
)

// Scoring constants (README.md explains them).
const (
	GoldScore     = 850
	SilverScore   = 700
	StandardScore = 500
	// ScorePrior is every component's rate (bps) before there is any
	// history; ScorePriorWeight is how many observations it weighs, so a
	// new vendor's score is 600 (standard) and moves as history builds up.
	ScorePrior       = 6000
	ScorePriorWeight = 10
	// LostClaimWeight: a claim decided against the vendor counts as this
	// many bad fulfilments.
	LostClaimWeight = 4
	// FastResponse and SlowResponse bound the response component: an
	// average first response within FastResponse earns it in full, one of
	// SlowResponse or more earns nothing.
	FastResponse = 12 * time.Hour
	SlowResponse = 48 * time.Hour
	// CounterfeitPenalty comes off the score per confirmed counterfeit.
	// It is wider than any tier band, so a confirmation always drops the
	// vendor at least one tier (unless it is on watch already).
	CounterfeitPenalty = 250
)

// Component weights (bps of the score).
const (
	weightOnTime   = 2500
	weightTracking = 1500
	weightDelivery = 2500
	weightClaims   = 2500
	weightResponse = 1000
)

// Breakdown is how a score was made: each component a smoothed rate in
// basis points, and the counterfeit penalty in points.
type Breakdown struct {
	OnTime, Tracking, Delivery, Claims, Response int64
	CounterfeitPenalty                           int64
}

// smoothed is (good + prior pseudo-observations) / (n + their weight), in
// basis points; good is clamped to 0..n.
func smoothed(goodBps, n int64) int64 {
	return (goodBps + ScorePriorWeight*ScorePrior) / (n + ScorePriorWeight)
}

func rate(good, n int64) int64 {
	n = max(n, 0)
	good = min(max(good, 0), n)
	return smoothed(good*10000, n)
}

// Score is the vendor's score (0-1000) and tier from its counts. It is a
// pure function of the counts, in integer arithmetic, so the same history
// gives the same score on every machine and every rebuild.
//
//	on time   25%  fulfilments shipped by the ship-by deadline / (those + deadlines missed)
//	tracking  15%  shipments with at least one carrier scan / shipments
//	delivery  25%  delivered / (delivered + delivery failures)
//	claims    25%  (fulfilments − 4 × claims lost) / fulfilments
//	response  10%  average first response: full within 12 h, nothing from 48 h
//
// Each rate is smoothed with 10 pseudo-observations at 60%, so a vendor
// with no history scores 600 and a few events move it little. The weighted
// sum (0-1000) loses 250 points per confirmed counterfeit. Tiers: gold
// from 850, silver from 700, standard from 500, watch below; one confirmed
// counterfeit caps the tier at silver, two or more mean watch.
func Score(c Counts) (int32, Tier, Breakdown) {
	b := Breakdown{
		OnTime:   rate(c.ShippedOnTime, c.ShippedOnTime+c.DeadlinesMissed),
		Tracking: rate(c.TrackedShipments, c.Shipments),
		Delivery: rate(c.Delivered, c.Delivered+c.DeliveryFailures),
		Claims:   rate(c.Fulfilments-LostClaimWeight*c.ClaimsLost, c.Fulfilments),
		Response: ScorePrior,
	}
	if c.Responses > 0 {
		avg := time.Duration(c.ResponseSeconds/c.Responses) * time.Second
		credit := int64(10000)
		switch {
		case avg >= SlowResponse:
			credit = 0
		case avg > FastResponse:
			credit = 10000 * int64(SlowResponse-avg) / int64(SlowResponse-FastResponse)
		}
		b.Response = smoothed(credit*c.Responses, c.Responses)
	}
	weighted := (weightOnTime*b.OnTime + weightTracking*b.Tracking + weightDelivery*b.Delivery +
		weightClaims*b.Claims + weightResponse*b.Response) / 10000 // bps
	b.CounterfeitPenalty = CounterfeitPenalty * max(c.CounterfeitsConfirmed, 0)
	score := min(max(weighted/10-b.CounterfeitPenalty, 0), 1000)
	tier := TierWatch
	switch {
	case score >= GoldScore:
		tier = TierGold
	case score >= SilverScore:
		tier = TierSilver
	case score >= StandardScore:
		tier = TierStandard
	}
	switch {
	case c.CounterfeitsConfirmed >= 2:
		tier = TierWatch
	case c.CounterfeitsConfirmed == 1 && tier == TierGold:
		tier = TierSilver
	}
	return int32(score), tier, b
}

// VendorTrust is the state of a vendor's trust aggregate.
type VendorTrust struct {
	// ID is the aggregate id (TrustAggregateID of VendorID).
	ID       string
	VendorID string
	Counts   Counts
	Score    int32
	Tier     Tier
	// Breakdown is how Score was made.
	Breakdown  Breakdown
	UpdateTime time.Time
	// Revision of the stream (set by folds that know it).
	Revision uint64
}

// NewVendorTrust is a vendor with no history: the starting score.
func NewVendorTrust(id string) VendorTrust {
	v := VendorTrust{ID: id}
	v.Score, v.Tier, v.Breakdown = Score(Counts{})
	return v
}

// RecordFacts counts what one event (CauseEventID) says about the vendor.
type RecordFacts struct {
	VendorID     string
	Delta        Counts
	CauseEventID string
	CauseType    string
	Now          time.Time
}

// DecideTrust returns TrustFactsRecorded, and TrustScoreChanged when the
// score or the tier moved. A delta of nothing decides nothing.
func DecideTrust(v VendorTrust, c RecordFacts) ([]proto.Message, error) {
	if c.Delta.IsZero() {
		return nil, nil
	}
	if c.VendorID == "" || TrustAggregateID(c.VendorID) != v.ID {
		return nil, fmt.Errorf("vendor trust %s: facts for vendor %q", v.ID, c.VendorID)
	}
	counts := v.Counts.Add(c.Delta)
	score, tier, _ := Score(counts)
	now := timestamppb.New(c.Now)
	evs := []proto.Message{&trustv1.TrustFactsRecorded{VendorId: c.VendorID, Delta: c.Delta.Proto(), Counts: counts.Proto(),
		Score: score, Tier: string(tier), CauseEventId: c.CauseEventID, CauseType: c.CauseType, RecordTime: now}}
	if score != v.Score || tier != v.Tier {
		evs = append(evs, &trustv1.TrustScoreChanged{VendorId: c.VendorID, Score: score, PreviousScore: v.Score,
			Tier: string(tier), PreviousTier: string(v.Tier), Counts: counts.Proto(), CauseEventId: c.CauseEventID, ChangeTime: now})
	}
	return evs, nil
}

// EvolveTrust applies one event. The score is recomputed from the counts,
// never read from the event, so the state is always Score(counts).
func EvolveTrust(v VendorTrust, e proto.Message) VendorTrust {
	switch e := e.(type) {
	case *trustv1.TrustFactsRecorded:
		v.VendorID = e.GetVendorId()
		v.Counts = v.Counts.Add(CountsFromProto(e.GetDelta()))
		v.Score, v.Tier, v.Breakdown = Score(v.Counts)
		v.UpdateTime = timeOf(e.GetRecordTime())
	case *trustv1.TrustScoreChanged:
		v.VendorID = e.GetVendorId()
	}
	return v
}

// Trust is the vendor trust aggregate: "vendortrust-<TrustAggregateID>".
// It lives as long as the vendor and counts every fact of its history, so
// it is snapshotted (TrustSnapshots).
var Trust = es.Decider[VendorTrust, RecordFacts]{
	Aggregate: "vendortrust",
	Initial:   NewVendorTrust,
	Decide:    DecideTrust,
	Evolve:    EvolveTrust,
	Snapshot:  TrustSnapshots,
}

// TrustSnapshots encodes a vendor's trust for snapshots as a
// custody.trust.v1.VendorTrustSnapshot: the vendor, its counts and their
// update time. Decoding computes the score, tier and breakdown from the
// counts again, as EvolveTrust does. Change Version when VendorTrust or
// what EvolveTrust counts changes meaning.
var TrustSnapshots = &es.SnapshotCodec[VendorTrust]{
	Version: "1",
	Encode: func(v VendorTrust) ([]byte, error) {
		m := &trustv1.VendorTrustSnapshot{VendorId: v.VendorID, Counts: v.Counts.Proto()}
		if !v.UpdateTime.IsZero() {
			m.UpdateTime = timestamppb.New(v.UpdateTime)
		}
		return proto.MarshalOptions{Deterministic: true}.Marshal(m)
	},
	Decode: func(id string, data []byte) (VendorTrust, error) {
		var m trustv1.VendorTrustSnapshot
		if err := proto.Unmarshal(data, &m); err != nil {
			return VendorTrust{}, err
		}
		v := NewVendorTrust(id)
		v.VendorID, v.Counts, v.UpdateTime = m.GetVendorId(), CountsFromProto(m.GetCounts()), timeOf(m.GetUpdateTime())
		v.Score, v.Tier, v.Breakdown = Score(v.Counts)
		return v, nil
	},
}

// ClaimFacts is what one claims event adds to its vendor's counts.
// Changes of mind are not the vendor's doing and are not counted.
func ClaimFacts(e proto.Message) (vendorID string, delta Counts, ok bool) {
	switch e := e.(type) {
	case *trustv1.ClaimOpened:
		if e.GetReason() != trustv1.ClaimReason_CLAIM_REASON_CHANGED_MIND {
			return e.GetVendorId(), Counts{Claims: 1}, true
		}
	case *trustv1.ClaimResponded:
		if e.GetFirstResponse() {
			return e.GetVendorId(), Counts{Responses: 1, ResponseSeconds: e.GetSecondsSinceOpen()}, true
		}
	case *trustv1.ClaimResolved:
		if e.GetCounterfeitConfirmed() {
			return e.GetVendorId(), Counts{CounterfeitsConfirmed: 1}, true
		}
	case *trustv1.ClaimClosed:
		if e.GetOutcome() == ClosedRefunded && e.GetClaimReason() != trustv1.ClaimReason_CLAIM_REASON_CHANGED_MIND {
			return e.GetVendorId(), Counts{ClaimsLost: 1}, true
		}
	}
	return "", Counts{}, false
}
