package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/deadline"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/payouts/app"
	"github.com/custody/custody/services/payouts/domain"
)

// ledgerFold is a short fold that moves every piece of the view's state
// (before) and what comes after it: a repeated transaction (ignored), new
// postings, a window closed and one opened, a reserve released and one
// held.
func ledgerFold() (before, after []proto.Message) {
	const (
		capture  = payoutsv1.TransactionKind_TRANSACTION_KIND_CAPTURE
		delivery = payoutsv1.TransactionKind_TRANSACTION_KIND_DELIVERY
		release  = payoutsv1.TransactionKind_TRANSACTION_KIND_RELEASE
		payout   = payoutsv1.TransactionKind_TRANSACTION_KIND_PAYOUT
	)
	escrow, pending, avail, reserve := "vendor:v1:escrow", "vendor:v1:pending", "vendor:v1:available", "vendor:v1:reserve"
	at := func(h int) *timestamppb.Timestamp { return timestamppb.New(t0.Add(time.Duration(h) * time.Hour)) }
	eur := func(n int64) *typev1.Money { return &typev1.Money{CurrencyCode: "EUR", AmountMinor: n} }
	before = []proto.Message{
		txn("t1", capture, "o1", "v1", 1, domain.BuyerPayments, int64(-1000), escrow, int64(1000)),
		txn("t2", capture, "o2", "v1", 2, domain.BuyerPayments, int64(-500), escrow, int64(500)),
		txn("t3", capture, "o3", "v2", 3, domain.BuyerPayments, int64(-700), "vendor:v2:escrow", int64(700)),
		txn("t4", delivery, "o1", "v1", 4, escrow, int64(-1000), pending, int64(1000)),
		&payoutsv1.ReturnWindowStarted{OrderId: "o1", VendorId: "v1", CloseTime: at(10)},
		&payoutsv1.ReturnWindowStarted{OrderId: "o2", VendorId: "v1", CloseTime: at(11)},
		&payoutsv1.ReturnWindowStarted{OrderId: "o3", VendorId: "v2", CloseTime: at(12)},
		&payoutsv1.ReturnWindowStarted{OrderId: "o4", VendorId: "v2", CloseTime: at(13)},
		&payoutsv1.ReturnWindowStarted{OrderId: "o6", VendorId: "v1", CloseTime: at(14)},
		&payoutsv1.ReturnWindowStarted{OrderId: "o6", VendorId: "v1", CloseTime: at(15)}, // moved
		&payoutsv1.ReturnWindowClosed{OrderId: "o2", VendorId: "v1", CloseTime: at(11)},
		txn("t5", release, "o1", "v1", 5, pending, int64(-1000), avail, int64(900), reserve, int64(100)),
		&payoutsv1.FundsReleased{OrderId: "o1", VendorId: "v1", VendorNet: eur(900), Reserve: eur(100), ReserveReleaseTime: at(50)},
		&payoutsv1.FundsReleased{OrderId: "o4", VendorId: "v2", VendorNet: eur(10)}, // no reserve held
		txn("t6", payout, "", "v1", 6, avail, int64(-400), domain.PayoutsSent, int64(400)),
		// Refused: escrow would leave int64. The view keeps the refusal.
		txn("t7", capture, "o2", "v1", 7, domain.BuyerPayments, int64(-math.MaxInt64), escrow, int64(math.MaxInt64)),
		txn("t8", capture, "o5", "v1", 8, domain.BuyerPayments, int64(-300), escrow, int64(300)),
	}
	after = []proto.Message{
		txn("t5", release, "o1", "v1", 5, pending, int64(-1000), avail, int64(900), reserve, int64(100)),
		txn("t7", capture, "o2", "v1", 7, domain.BuyerPayments, int64(-math.MaxInt64), escrow, int64(math.MaxInt64)),
		txn("t9", capture, "o1", "v1", 9, domain.BuyerPayments, int64(-50), escrow, int64(50)),
		txn("t10", payout, "", "v1", 9, avail, int64(-500), domain.PayoutsSent, int64(500)),
		&payoutsv1.ReturnWindowClosed{OrderId: "o3", VendorId: "v2", CloseTime: at(12)},
		&payoutsv1.ReturnWindowStarted{OrderId: "o5", VendorId: "v1", CloseTime: at(20)},
		&payoutsv1.ReserveReleased{OrderId: "o1", VendorId: "v1", Amount: eur(100), ReleaseTime: at(50)},
		&payoutsv1.FundsReleased{OrderId: "o3", VendorId: "v2", VendorNet: eur(600), Reserve: eur(70), ReserveReleaseTime: at(60)},
	}
	return before, after
}

// The stored ledger view reopens whole: closed and attached again, it
// answers every query as a view that never closed does, at the position
// of its last event, with the overflow refusal and the transactions seen
// (a repeat is still ignored, the refused one still refused), has its
// Deadlines told exactly the windows and reserves still open; later events
// fold on top.
func TestLedgerViewReopens(t *testing.T) {
	t.Parallel()
	before, after := ledgerFold()
	refSched := scheduled{}
	ref := newLedgerView(t, refSched, nil)
	dir := t.TempDir()
	v, db := attachedLedger(t, dir, scheduled{})
	for i, m := range before {
		fold(t, ref, uint64(i+1), m)
		fold(t, v, uint64(i+1), m)
	}
	want := ledgerAnswers(t, ref, refSched)
	for _, part := range []string{"err overflow=true", "window/o3/v2", "window/o6/v1 2026-01-01T15:00:00Z", "reserve/o1/v1",
		"entry {Account: OrderID:o1}", "statement vendor:v1:escrow [2026-01-01 00:02:00 +0000 UTC 2026-01-01 00:08:00 +0000 UTC] 2 entries"} {
		if !strings.Contains(want, part) {
			t.Fatalf("the fold lacks %q: the test proves nothing\n%s", part, want)
		}
	}
	if strings.Contains(want, "window/o1/v1") || strings.Contains(want, "window/o2/v1") || strings.Contains(want, "window/o4/v2") {
		t.Fatalf("closed windows scheduled\n%s", want)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	sched := scheduled{}
	v, db = attachedLedger(t, dir, sched)
	if got := ledgerAnswers(t, v, sched); got != want {
		t.Fatalf("the reopened view answers\n%s\nwant\n%s", got, want)
	}
	s, err := db.Space("payouts/ledger balances and entries")
	if err != nil {
		t.Fatal(err)
	}
	if at, _, err := s.State(); err != nil || at != uint64(len(before)) {
		t.Fatalf("reopened at position %d (%v), want %d", at, err, len(before))
	}
	for i, m := range after {
		pos := uint64(len(before) + i + 1)
		fold(t, ref, pos, m)
		fold(t, v, pos, m)
	}
	want = ledgerAnswers(t, ref, refSched)
	whole := 0 // the whole ledger's entries of t5 (folded once: three postings) and t7 (refused twice)
	for _, l := range strings.Split(want, "\n") {
		if strings.HasPrefix(l, "entry {Account: OrderID:}") && (strings.Contains(l, "TxnID:t5 ") || strings.Contains(l, "TxnID:t7 ")) {
			whole++
		}
	}
	if !strings.Contains(want, "window/o5/v1") || !strings.Contains(want, "reserve/o3/v2") || strings.Contains(want, "reserve/o1/v1") || whole != 3 {
		t.Fatalf("the events after the reopen did not move the deadlines, or a repeat or refused transaction was folded\n%s", want)
	}
	if got := ledgerAnswers(t, v, sched); got != want {
		t.Fatalf("after more events the reopened view answers\n%s\nwant\n%s", got, want)
	}
}

// calls records every call a LedgerView makes to its Deadlines, in order.
type calls []string

func (c *calls) WindowOpen(o, v string, at time.Time) {
	*c = append(*c, fmt.Sprintf("open window/%s/%s %s", o, v, at.UTC().Format(time.RFC3339)))
}
func (c *calls) WindowDone(o, v string) { *c = append(*c, fmt.Sprintf("done window/%s/%s", o, v)) }
func (c *calls) ReserveHeld(o, v string, at time.Time) {
	*c = append(*c, fmt.Sprintf("open reserve/%s/%s %s", o, v, at.UTC().Format(time.RFC3339)))
}
func (c *calls) ReserveDone(o, v string) { *c = append(*c, fmt.Sprintf("done reserve/%s/%s", o, v)) }

// onScheduler keeps a real deadline scheduler (never run) as the service
// does: a key per deadline.
type onScheduler struct{ s *deadline.Scheduler }

func (d onScheduler) WindowOpen(o, v string, at time.Time) {
	d.s.Schedule("window/"+o+"/"+v, at, func(_ context.Context) error { return nil })
}
func (d onScheduler) WindowDone(o, v string) { d.s.Cancel("window/" + o + "/" + v) }
func (d onScheduler) ReserveHeld(o, v string, at time.Time) {
	d.s.Schedule("reserve/"+o+"/"+v, at, func(_ context.Context) error { return nil })
}
func (d onScheduler) ReserveDone(o, v string) { d.s.Cancel("reserve/" + o + "/" + v) }

// Across reopens nothing is scheduled twice and nothing is lost: a view
// attached to a stored space tells its Deadlines each window and reserve
// still open exactly once (and closes nothing), the same set a view that
// never closed has scheduled; a real scheduler (pkg/deadline) then holds
// exactly those keys at those times, and events folded after the reopen
// move them as on the view that never closed, again after a second reopen.
func TestLedgerViewSchedulesOnceAcrossReopens(t *testing.T) {
	t.Parallel()
	before, after := ledgerFold()
	refSched := scheduled{}
	ref := newLedgerView(t, refSched, nil)
	dir := t.TempDir()
	first := &calls{}
	v, db := attachedLedger(t, dir, first)
	for i, m := range before {
		fold(t, ref, uint64(i+1), m)
		fold(t, v, uint64(i+1), m)
	}
	if len(*first) < len(before)/2 || len(refSched) < 3 {
		t.Fatalf("the fold scheduled too little to prove anything: %v", *first)
	}
	// told are the calls on a reopen: each open deadline once, nothing else.
	told := func(c calls, want scheduled) {
		t.Helper()
		var got []string
		for _, call := range c {
			what, ok := strings.CutPrefix(call, "open ")
			if !ok {
				t.Errorf("told on attach: %s", call)
				continue
			}
			got = append(got, what)
		}
		slices.Sort(got)
		if strings.Join(got, "\n") != want.String() {
			t.Fatalf("told on attach\n%s\nwant each open deadline once\n%s", strings.Join(got, "\n"), want)
		}
	}
	// holds checks that a real scheduler holds exactly want.
	holds := func(s *deadline.Scheduler, want scheduled) {
		t.Helper()
		if s.Pending() != len(want) {
			t.Fatalf("the scheduler holds %d deadlines, want %d:\n%s", s.Pending(), len(want), want)
		}
		for key, at := range want {
			if got, ok := s.When(key); !ok || !got.Equal(at) {
				t.Fatalf("the scheduler has %s at %v (%v), want %v", key, got, ok, at)
			}
		}
	}
	reopen := func(d app.Deadlines) *app.LedgerView {
		t.Helper()
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		var v *app.LedgerView
		v, db = attachedLedger(t, dir, d)
		return v
	}

	second := &calls{}
	reopen(second)
	told(*second, refSched)

	sch := deadline.New("payouts", clock.NewFake(t0), slog.New(slog.DiscardHandler))
	v = reopen(onScheduler{sch})
	holds(sch, refSched)
	for i, m := range after {
		pos := uint64(len(before) + i + 1)
		fold(t, ref, pos, m)
		fold(t, v, pos, m)
	}
	holds(sch, refSched)

	third := &calls{}
	reopen(third)
	told(*third, refSched)
}
