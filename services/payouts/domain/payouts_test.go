package domain_test

import (
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
