package domain_test

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/trust/domain"
)

var tierRank = map[domain.Tier]int{domain.TierWatch: 0, domain.TierStandard: 1, domain.TierSilver: 2, domain.TierGold: 3}

func perfect(n int64) domain.Counts {
	return domain.Counts{Fulfilments: n, ShippedOnTime: n, TrackedShipments: n, Shipments: n, Delivered: n}
}

func TestScore(t *testing.T) {
	tests := []struct {
		name   string
		counts domain.Counts
		score  int32
		tier   domain.Tier
	}{
		{"a new vendor starts at standard", domain.Counts{}, 600, domain.TierStandard},
		{"ten clean orders: silver", perfect(10), 780, domain.TierSilver},
		{"forty clean orders: gold", perfect(40), 888, domain.TierGold},
		{"forty clean orders, one counterfeit", func() domain.Counts { c := perfect(40); c.CounterfeitsConfirmed = 1; return c }(), 638, domain.TierStandard},
		{"two counterfeits: watch", func() domain.Counts { c := perfect(400); c.CounterfeitsConfirmed = 2; return c }(), 451, domain.TierWatch},
		{"missed deadlines and lost parcels", domain.Counts{Fulfilments: 20, ShippedOnTime: 5, DeadlinesMissed: 15, Shipments: 5, TrackedShipments: 2, Delivered: 2, DeliveryFailures: 3}, 581, domain.TierStandard},
		{"slow responses cost", func() domain.Counts {
			c := perfect(40)
			c.Responses, c.ResponseSeconds = 10, 10*int64(48*time.Hour/time.Second)
			return c
		}(), 858, domain.TierGold},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			score, tier, _ := domain.Score(tt.counts)
			if score != tt.score || tier != tt.tier {
				t.Fatalf("Score = %d %s, want %d %s", score, tier, tt.score, tt.tier)
			}
		})
	}
}

// randomCounts is a plausible history.
func randomCounts(r *rand.Rand) domain.Counts {
	n := r.Int64N(200)
	shipped := n - r.Int64N(n/5+1)
	return domain.Counts{Fulfilments: n, ShippedOnTime: shipped - r.Int64N(shipped/4+1), DeadlinesMissed: n - shipped,
		Shipments: shipped, TrackedShipments: shipped - r.Int64N(shipped/4+1), Delivered: shipped - r.Int64N(shipped/5+1),
		DeliveryFailures: r.Int64N(5), Claims: r.Int64N(n/5 + 1), ClaimsLost: r.Int64N(n/10 + 1),
		Responses: r.Int64N(10), ResponseSeconds: r.Int64N(10 * 72 * 3600)}
}

// A confirmed counterfeit always drops the vendor at least one tier (or
// keeps it on watch) and never raises the score.
func TestCounterfeitDropsATier(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		c := randomCounts(r)
		if i%7 == 0 {
			c = perfect(r.Int64N(1000))
		}
		before, tb, _ := domain.Score(c)
		c.CounterfeitsConfirmed++
		after, ta, _ := domain.Score(c)
		if after > before || (tb != domain.TierWatch && tierRank[ta] >= tierRank[tb]) || (tb == domain.TierWatch && ta != domain.TierWatch) {
			t.Fatalf("%+v: %d %s -> %d %s", c, before, tb, after, ta)
		}
	}
}

// The same facts in any order give the same state: counts add up and the
// score is a function of the counts.
func TestTrustFoldIsOrderIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	id := domain.TrustAggregateID("v1")
	var evs []proto.Message
	v := domain.Trust.Initial(id)
	for i := range 60 {
		d := domain.Counts{}
		switch i % 6 {
		case 0:
			d.Fulfilments = 1
		case 1:
			d.Shipments, d.ShippedOnTime = 1, int64(r.IntN(2))
		case 2:
			d.TrackedShipments = 1
		case 3:
			d.Delivered = 1
		case 4:
			d.Claims, d.ClaimsLost = 1, int64(r.IntN(2))
		case 5:
			d.Responses, d.ResponseSeconds = 1, r.Int64N(72*3600)
		}
		got, err := domain.DecideTrust(v, domain.RecordFacts{VendorID: "v1", Delta: d, CauseEventID: "e", Now: t0})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got {
			v = domain.EvolveTrust(v, e)
		}
		evs = append(evs, got...)
	}
	for range 20 {
		shuffled := slices.Clone(evs)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		w := domain.Trust.Initial(id)
		for _, e := range shuffled {
			w = domain.EvolveTrust(w, e)
		}
		if w.Counts != v.Counts || w.Score != v.Score || w.Tier != v.Tier {
			t.Fatalf("shuffled fold %+v differs from %+v", w, v)
		}
	}
	if s, tier, _ := domain.Score(v.Counts); s != v.Score || tier != v.Tier {
		t.Fatalf("state score %d %s is not Score(counts) = %d %s", v.Score, v.Tier, s, tier)
	}
}

func TestDecideTrust(t *testing.T) {
	id := domain.TrustAggregateID("v1")
	v := domain.Trust.Initial(id)
	evs, err := domain.DecideTrust(v, domain.RecordFacts{VendorID: "v1", Delta: domain.Counts{Fulfilments: 1}, CauseEventID: "e1", CauseType: "x", Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	// 1 fulfilment without a claim moves the claims component up a little.
	wantNames(t, evs, "TrustFactsRecorded", "TrustScoreChanged")
	ch := find[*trustv1.TrustScoreChanged](t, evs)
	if ch.GetPreviousScore() != 600 || ch.GetScore() <= 600 || ch.GetPreviousTier() != "standard" || ch.GetCauseEventId() != "e1" {
		t.Fatalf("changed %v", ch)
	}
	for _, e := range evs {
		v = domain.EvolveTrust(v, e)
	}
	// A shipment: tracking component falls (not yet scanned), on-time rises.
	evs, _ = domain.DecideTrust(v, domain.RecordFacts{VendorID: "v1", Delta: domain.Counts{Claims: 1}, CauseEventID: "e2", Now: t0})
	wantNames(t, evs, "TrustFactsRecorded") // claims opened do not weigh, only claims lost
	if evs, _ := domain.DecideTrust(v, domain.RecordFacts{VendorID: "v1", CauseEventID: "e3", Now: t0}); len(evs) != 0 {
		t.Fatalf("nothing counted decided %v", names(evs))
	}
	if _, err := domain.DecideTrust(v, domain.RecordFacts{VendorID: "v2", Delta: domain.Counts{Claims: 1}, Now: t0}); err == nil {
		t.Fatal("another vendor's facts were accepted")
	}
}

func TestClaimFacts(t *testing.T) {
	tests := []struct {
		event proto.Message
		want  domain.Counts
	}{
		{&trustv1.ClaimOpened{VendorId: "v1", Reason: damaged}, domain.Counts{Claims: 1}},
		{&trustv1.ClaimOpened{VendorId: "v1", Reason: changedMind}, domain.Counts{}},
		{&trustv1.ClaimResponded{VendorId: "v1", FirstResponse: true, SecondsSinceOpen: 60}, domain.Counts{Responses: 1, ResponseSeconds: 60}},
		{&trustv1.ClaimResponded{VendorId: "v1", SecondsSinceOpen: 60}, domain.Counts{}},
		{&trustv1.ClaimResolved{VendorId: "v1", CounterfeitConfirmed: true}, domain.Counts{CounterfeitsConfirmed: 1}},
		{&trustv1.ClaimResolved{VendorId: "v1"}, domain.Counts{}},
		{&trustv1.ClaimClosed{VendorId: "v1", Outcome: "refunded", ClaimReason: notReceived}, domain.Counts{ClaimsLost: 1}},
		{&trustv1.ClaimClosed{VendorId: "v1", Outcome: "refunded", ClaimReason: changedMind}, domain.Counts{}},
		{&trustv1.ClaimClosed{VendorId: "v1", Outcome: "rejected", ClaimReason: damaged}, domain.Counts{}},
		{&trustv1.RefundIssued{VendorId: "v1"}, domain.Counts{}},
	}
	for _, tt := range tests {
		_, got, _ := domain.ClaimFacts(tt.event)
		if got != tt.want {
			t.Errorf("%T %v: %+v, want %+v", tt.event, tt.event, got, tt.want)
		}
	}
}

// FulfilmentFacts gives each event's facts, the same whether asked right
// after the event or after the whole history was folded.
func TestFulfilmentFacts(t *testing.T) {
	w := deliveredWorld(true)
	w.add("e-scan3-again", scan("c3", fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED, 3*day, nil))
	w.add("e-missed", &fulfilmentv1.ShipByDeadlineMissed{FulfilmentId: "f1", OrderId: "o1", VendorId: "v1", Action: "flag"})
	w.add("e-missed2", &fulfilmentv1.ShipByDeadlineMissed{FulfilmentId: "f1", OrderId: "o1", VendorId: "v1", Action: "cancel"})
	w.add("e-late", &fulfilmentv1.FulfilmentShipped{FulfilmentId: "f1", OrderId: "o1", VendorId: "v1", ShipmentId: "s2", FullyShipped: true,
		ShipTime: ts(5 * day), TrackingNumber: "X"})
	w.add("e-lost", lost())

	incremental := domain.NewRecords()
	var stepwise domain.Counts
	for i, m := range w.msgs {
		incremental.Apply(w.ids[i], m)
		if v, d, ok := incremental.FulfilmentFacts(w.ids[i], m); ok {
			if v != "v1" {
				t.Fatalf("facts for vendor %q", v)
			}
			stepwise = stepwise.Add(d)
		}
	}
	all := w.records()
	var atEnd domain.Counts
	for i, m := range w.msgs {
		if _, d, ok := all.FulfilmentFacts(w.ids[i], m); ok {
			atEnd = atEnd.Add(d)
		}
	}
	want := domain.Counts{Fulfilments: 1, Shipments: 2, ShippedOnTime: 1, TrackedShipments: 1, Delivered: 1, DeadlinesMissed: 1, DeliveryFailures: 1}
	if stepwise != want || atEnd != want {
		t.Fatalf("stepwise %+v, at the end %+v, want %+v", stepwise, atEnd, want)
	}
}

func TestRecordFold(t *testing.T) {
	w := deliveredWorld(true)
	w.add("e-scan1", w.msgs[3]) // a redelivered scan is kept once
	r := w.record("v1")
	f := r.Fulfilment
	if f == nil || f.FulfilmentID != "f1" || len(f.Shipments) != 1 || f.Delivery == nil || !f.Delivery.WithProof {
		t.Fatalf("record %+v", f)
	}
	s := f.Shipments[0]
	if len(s.Scans) != 3 || len(s.Units) != 3 || s.Photos != 1 || !s.ExpectedDelivery.Equal(t0.Add(3*day)) || !s.Scans[2].WithProof {
		t.Fatalf("shipment %+v", s)
	}
	if r.Order.Captured != eur(3200) || len(r.Order.Lines) != 3 || r.Order.ConfirmedEventID != "e-confirmed" {
		t.Fatalf("order %+v", r.Order)
	}
	// Records hands out copies.
	r.Fulfilment.Shipments[0].Scans = nil
	if again := w.record("v1"); len(again.Fulfilment.Shipments[0].Scans) != 3 {
		t.Fatal("a record's copy shares its scans")
	}
	if _, ok := w.records().Record("o1", "v2"); !ok {
		t.Fatal("v2's record (order facts, no fulfilment) missing")
	}
}

// A vendor's trust decoded from its snapshot is the state folded from its
// history, and decides the next facts the same.
func TestTrustSnapshotRoundTrips(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	id := domain.TrustAggregateID("v1")
	history := func(deltas ...domain.Counts) domain.VendorTrust {
		v := domain.Trust.Initial(id)
		for i, d := range deltas {
			evs, err := domain.DecideTrust(v, domain.RecordFacts{VendorID: "v1", Delta: d, CauseEventID: "e", Now: t0.Add(time.Duration(i) * time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				v = domain.EvolveTrust(v, e)
			}
		}
		return v
	}
	var long []domain.Counts
	for range 50 {
		long = append(long, randomCounts(r))
	}
	cases := []struct {
		name string
		v    domain.VendorTrust
	}{
		{"no history", history()},
		{"one fulfilment", history(domain.Counts{Fulfilments: 1})},
		{"a counterfeit", history(perfect(40), domain.Counts{CounterfeitsConfirmed: 1})},
		{"a long history", history(long...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, err := domain.TrustSnapshots.Encode(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			got, err := domain.TrustSnapshots.Decode(id, data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.v) {
				t.Fatalf("decoded %+v\nwant    %+v", got, tc.v)
			}
			next := domain.RecordFacts{VendorID: "v1", Delta: domain.Counts{ClaimsLost: 1, Claims: 1}, CauseEventID: "n", Now: t0.Add(time.Hour)}
			a, errA := domain.DecideTrust(got, next)
			b, errB := domain.DecideTrust(tc.v, next)
			if errA != nil || errB != nil || !slices.EqualFunc(a, b, proto.Equal) {
				t.Fatalf("decided %v (%v) from the snapshot, %v (%v) from the history", a, errA, b, errB)
			}
		})
	}
	if _, err := domain.TrustSnapshots.Decode(id, []byte{0xff}); err == nil {
		t.Error("bytes that are not a snapshot decoded")
	}
}
