package app_test

import (
	"flag"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/payouts/domain"
)

var update = flag.Bool("update", false, "rewrite testdata/ledger_answers.golden")

// ledgerSequence is a long deterministic mix of what the ledger view
// folds: captures, deliveries, releases with and without reserves,
// refunds, clawbacks into negative balances and payouts, in EUR and JPY,
// for three vendors and two creators over 40 orders; return windows
// opened, moved, closed and released; reserves held and released; a
// repeated transaction and one refused for overflow.
func ledgerSequence() []proto.Message {
	rng := rand.New(rand.NewPCG(7, 11))
	var out []proto.Message
	n := 0
	at := func(min int) *timestamppb.Timestamp { return timestamppb.New(t0.Add(time.Duration(min) * time.Minute)) }
	post := func(kind payoutsv1.TransactionKind, order, vendor string, postings ...any) *payoutsv1.TransactionPosted {
		n++
		tp := &payoutsv1.TransactionPosted{TransactionId: fmt.Sprint("g", n), Kind: kind, OrderId: order, VendorId: vendor,
			CauseEventId: fmt.Sprint("cause-g", n), CauseType: "golden", Reference: fmt.Sprint("ref-", n), Memo: fmt.Sprint("memo ", n),
			PostTime: at(n / 4)}
		for i := 0; i < len(postings); i += 3 {
			tp.Postings = append(tp.Postings, &payoutsv1.Posting{Account: postings[i].(string),
				Amount: &typev1.Money{CurrencyCode: postings[i+2].(string), AmountMinor: postings[i+1].(int64)}})
		}
		out = append(out, tp)
		return tp
	}
	const (
		capture  = payoutsv1.TransactionKind_TRANSACTION_KIND_CAPTURE
		delivery = payoutsv1.TransactionKind_TRANSACTION_KIND_DELIVERY
		release  = payoutsv1.TransactionKind_TRANSACTION_KIND_RELEASE
		refund   = payoutsv1.TransactionKind_TRANSACTION_KIND_REFUND
		payout   = payoutsv1.TransactionKind_TRANSACTION_KIND_PAYOUT
	)
	type part struct {
		order, vendor, cur string
		amt                int64
		stage              int // 0 escrow, 1 pending, 2 released
	}
	var parts []*part
	for range 400 {
		switch r := rng.IntN(100); {
		case r < 25 || len(parts) == 0:
			o := fmt.Sprint("o", len(parts)/2+1)
			v := fmt.Sprint("v", 1+rng.IntN(3))
			cur := []string{"EUR", "JPY"}[rng.IntN(2)]
			amt := int64(1 + rng.IntN(20000))
			p := &part{o, v, cur, amt, 0}
			parts = append(parts, p)
			c := fmt.Sprint("c", 1+rng.IntN(2))
			comm := amt / 10
			post(capture, o, v, domain.BuyerPayments, -amt, cur, "vendor:"+v+":escrow", amt-comm, cur, "creator:"+c+":pending", comm, cur)
		case r < 45:
			p := parts[rng.IntN(len(parts))]
			if p.stage != 0 {
				continue
			}
			p.stage = 1
			post(delivery, p.order, p.vendor, "vendor:"+p.vendor+":escrow", -p.amt, p.cur, "vendor:"+p.vendor+":pending", p.amt, p.cur)
			out = append(out, &payoutsv1.ReturnWindowStarted{OrderId: p.order, VendorId: p.vendor, CloseTime: at(100 + rng.IntN(100))})
			if rng.IntN(4) == 0 { // moved
				out = append(out, &payoutsv1.ReturnWindowStarted{OrderId: p.order, VendorId: p.vendor, CloseTime: at(300 + rng.IntN(100))})
			}
		case r < 60:
			p := parts[rng.IntN(len(parts))]
			if p.stage != 1 {
				continue
			}
			p.stage = 2
			res := p.amt / 20
			post(release, p.order, p.vendor, "vendor:"+p.vendor+":pending", -p.amt, p.cur, "vendor:"+p.vendor+":available", p.amt-res, p.cur,
				"vendor:"+p.vendor+":reserve", res, p.cur, "platform:fees", int64(0), p.cur)
			if rng.IntN(3) == 0 {
				out = append(out, &payoutsv1.ReturnWindowClosed{OrderId: p.order, VendorId: p.vendor, CloseTime: at(150)})
			}
			out = append(out, &payoutsv1.FundsReleased{OrderId: p.order, VendorId: p.vendor,
				Reserve: &typev1.Money{CurrencyCode: p.cur, AmountMinor: res}, ReserveReleaseTime: at(1000 + rng.IntN(1000))})
		case r < 68:
			p := parts[rng.IntN(len(parts))]
			if p.stage != 2 {
				continue
			}
			out = append(out, &payoutsv1.ReserveReleased{OrderId: p.order, VendorId: p.vendor})
		case r < 80:
			p := parts[rng.IntN(len(parts))]
			amt := int64(1 + rng.IntN(int(p.amt)))
			post(refund, p.order, p.vendor, "vendor:"+p.vendor+":available", -amt, p.cur, domain.BuyerRefunds, amt, p.cur)
		case r < 90:
			v := fmt.Sprint("v", 1+rng.IntN(3))
			cur := []string{"EUR", "JPY"}[rng.IntN(2)]
			post(payout, "", "", "vendor:"+v+":available", -int64(1+rng.IntN(5000)), cur, domain.PayoutsSent, int64(0), cur)
		case r < 93:
			c := fmt.Sprint("c", 1+rng.IntN(2))
			post(payout, "", "", "creator:"+c+":available", -int64(1+rng.IntN(300)), "EUR", "creator:"+c+":pending", int64(0), "EUR")
		case r < 95 && len(out) > 0:
			for i := len(out) - 1; i >= 0; i-- { // a transaction repeated
				if tp, ok := out[i].(*payoutsv1.TransactionPosted); ok {
					out = append(out, proto.Clone(tp))
					break
				}
			}
		default:
			p := parts[rng.IntN(len(parts))]
			out = append(out, &payoutsv1.ReturnWindowClosed{OrderId: p.order, VendorId: p.vendor})
		}
	}
	// Refused: the platform's fees would leave int64; then more folds on.
	post(capture, "o1", "v1", domain.BuyerPayments, int64(-math.MaxInt64), "EUR", "platform:fees", int64(math.MaxInt64), "EUR")
	post(capture, "o1", "v1", domain.BuyerPayments, int64(-math.MaxInt64), "EUR", "platform:fees", int64(math.MaxInt64), "EUR")
	post(capture, "o2", "v2", domain.BuyerPayments, int64(-5), "EUR", "vendor:v2:escrow", int64(5), "EUR")
	return out
}

// goldenAnswers folds ledgerSequence and answers every query.
func goldenAnswers(t *testing.T) string {
	sched := scheduled{}
	v := newLedgerView(t, sched, slog.New(slog.DiscardHandler))
	for i, m := range ledgerSequence() {
		fold(t, v, uint64(i+1), m)
	}
	return ledgerAnswers(t, v, sched)
}

// The ledger view answers every query exactly as the view held in the heap
// answered it (testdata/ledger_answers.golden was written by it, before
// the view moved to the read-model store).
func TestLedgerViewAnswersAsBefore(t *testing.T) {
	t.Parallel()
	got := goldenAnswers(t)
	path := filepath.Join("testdata", "ledger_answers.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("the ledger view answers differently from before:\n%s", firstDiff(got, string(want)))
	}
}

// The ledger view closed and reopened anywhere in the sequence — its
// store closed, a new view attached to it, the rest folded on top —
// answers exactly as before and has exactly the same deadlines scheduled:
// those it tells on Attach and those the later events open and close.
func TestLedgerViewReopensMidway(t *testing.T) {
	t.Parallel()
	want, err := os.ReadFile(filepath.Join("testdata", "ledger_answers.golden"))
	if err != nil {
		t.Fatal(err)
	}
	events := ledgerSequence()
	for _, cut := range []int{1, len(events) / 3, len(events) / 2, len(events) - 3} {
		t.Run(fmt.Sprint("at ", cut), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			v, db := attachedLedger(t, dir, scheduled{})
			for i, m := range events[:cut] {
				fold(t, v, uint64(i+1), m)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			v, _ = attachedLedger(t, dir, scheduled{})
			for i, m := range events[cut:] {
				fold(t, v, uint64(cut+i+1), m)
			}
			if got := ledgerAnswers(t, v, nil); got != string(want) {
				t.Fatalf("reopened after %d events, the view answers differently:\n%s", cut, firstDiff(got, string(want)))
			}
		})
	}
}
