package domain_test

import (
	"reflect"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/payouts/domain"
)

func run(req string, credited map[string]map[string]int64) domain.RunPayouts {
	return domain.RunPayouts{RequestID: req, Credited: credited, MinPayout: domain.MinPayout{Default: 1000, PerCurrency: map[string]int64{"JPY": 100}},
		RequestedBy: "platform:ops", Time: t0}
}

func TestPayoutRuns(t *testing.T) {
	credited := map[string]map[string]int64{
		"vendor:v1:available":  {"EUR": 2518, "JPY": 99},
		"vendor:v2:available":  {"EUR": 999},   // below the minimum
		"vendor:v3:available":  {"EUR": -500},  // clawed back: never paid
		"creator:c1:available": {"EUR": 1000},  // exactly the minimum
		"platform:fees":        {"EUR": 50000}, // not a payee
		"vendor:v1:reserve":    {"EUR": 132},   // not payable
	}
	evs, err := domain.DecidePayouts(domain.Payouts{}, run("r1", credited))
	if err != nil {
		t.Fatal(err)
	}
	if got := posted(evs); got != "PAYOUT creator:c1:available=-1000 payouts:sent=3518 vendor:v1:available=-2518" {
		t.Fatalf("posted %s", got)
	}
	b := evs[0].(*payoutsv1.PayoutBatchCreated)
	want := &payoutsv1.PayoutBatchCreated{BatchId: domain.BatchID("r1"), RequestId: "r1", RequestedBy: "platform:ops", CreateTime: ts(0),
		Lines: []*payoutsv1.PayoutLine{
			{Payee: "creator:c1", Account: "creator:c1:available", Amount: eur(1000).ToProto()},
			{Payee: "vendor:v1", Account: "vendor:v1:available", Amount: eur(2518).ToProto()},
		},
		Totals: []*typev1.Money{eur(3518).ToProto()}}
	if !proto.Equal(b, want) {
		t.Fatalf("batch %v", b)
	}
	s := domain.EvolvePayouts(domain.Payouts{}, evs[0])

	// The same request again pays nothing, however much is credited since.
	credited["vendor:v1:available"]["EUR"] += 5000
	if evs, _ := domain.DecidePayouts(s, run("r1", credited)); len(evs) != 0 {
		t.Fatalf("repeated request decided %v", evs)
	}
	// A new run pays only what was credited since: 50.00 to v1; c1 has
	// nothing new.
	evs, _ = domain.DecidePayouts(s, run("r2", credited))
	if got := posted(evs); got != "PAYOUT payouts:sent=5000 vendor:v1:available=-5000" {
		t.Fatalf("second run posted %s", got)
	}
	// A run that finds nothing still records its batch, without money.
	s = domain.EvolvePayouts(s, evs[0])
	evs, _ = domain.DecidePayouts(s, run("r3", credited))
	if len(evs) != 1 || len(evs[0].(*payoutsv1.PayoutBatchCreated).GetLines()) != 0 {
		t.Fatalf("empty run decided %v", evs)
	}
	// Runs never pay the same money twice even when the credited snapshot
	// lags (a stale projection): what was paid is the aggregate's own.
	stale := map[string]map[string]int64{"vendor:v1:available": {"EUR": 2518}}
	if evs, _ := domain.DecidePayouts(s, run("r4", stale)); len(evs[0].(*payoutsv1.PayoutBatchCreated).GetLines()) != 0 {
		t.Fatalf("stale snapshot paid again: %v", evs)
	}
	if c := s.Clone(); !slices.Equal(c.Batches[domain.BatchID("r1")].Lines, s.Batches[domain.BatchID("r1")].Lines) {
		t.Fatal("clone lost a batch")
	}
}

func TestMinPayout(t *testing.T) {
	m := domain.MinPayout{Default: 0, PerCurrency: map[string]int64{"JPY": 500}}
	if m.For("EUR") != 1 || m.For("JPY") != 500 {
		t.Fatalf("min payout %d %d", m.For("EUR"), m.For("JPY"))
	}
}

// The payout runs decoded from their snapshot are the state folded from
// the runs, and decide the next run (and a repeated one) the same.
func TestPayoutsSnapshotRoundTrips(t *testing.T) {
	credited := map[string]map[string]int64{"vendor:v1:available": {"EUR": 2518, "JPY": 400}, "creator:c1:available": {"EUR": 1000}}
	fold := func(requests ...string) domain.Payouts {
		s := domain.PayoutsDecider.Initial(domain.PayoutsID)
		for i, req := range requests {
			credited["vendor:v1:available"]["EUR"] += int64(i) * 1500
			evs, err := domain.DecidePayouts(s, run(req, credited))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				s = domain.EvolvePayouts(s, e)
			}
		}
		return s
	}
	cases := []struct {
		name string
		s    domain.Payouts
	}{
		{"no run yet", fold()},
		{"one run", fold("r1")},
		{"several runs", fold("r1", "r2", "r3", "r4")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, err := domain.PayoutsSnapshots.Encode(tc.s)
			if err != nil {
				t.Fatal(err)
			}
			got, err := domain.PayoutsSnapshots.Decode(domain.PayoutsID, data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.s) {
				t.Fatalf("decoded %+v\nwant    %+v", got, tc.s)
			}
			credited["creator:c1:available"]["EUR"] += 2000
			for _, req := range []string{"r1", "next"} {
				a, errA := domain.DecidePayouts(got, run(req, credited))
				b, errB := domain.DecidePayouts(tc.s, run(req, credited))
				if errA != nil || errB != nil || !slices.EqualFunc(a, b, proto.Equal) {
					t.Fatalf("%s: decided %v (%v) from the snapshot, %v (%v) from the runs", req, a, errA, b, errB)
				}
			}
		})
	}
	if _, err := domain.PayoutsSnapshots.Decode(domain.PayoutsID, []byte{0xff}); err == nil {
		t.Error("bytes that are not a snapshot decoded")
	}
}
