package app_test

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/deadline"
	"github.com/custody/custody/pkg/platform/platformtest"
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
// (a repeat is still ignored, the refused one still refused), keeps
// exactly the windows and reserves still open (telling its Deadlines
// nothing: the scheduler reads them); later events fold on top.
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
	told := &calls{}
	v, db = attachedLedger(t, dir, told)
	if len(*told) != 0 {
		t.Fatalf("Attach told %v", *told)
	}
	if got := ledgerAnswers(t, v, nil); got != want {
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
	if got := ledgerAnswers(t, v, nil); got != want {
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

// onScheduler keeps a real deadline scheduler as the service does: the
// view's key per deadline (app.DeadlineKey), the scheduler given once the
// view is attached (it is the scheduler's store).
type onScheduler struct{ s **deadline.Scheduler }

func (d onScheduler) WindowOpen(o, v string, at time.Time) {
	(*d.s).Schedule(app.DeadlineKey(true, o, v), at, nil)
}
func (d onScheduler) WindowDone(o, v string) { (*d.s).Cancel(app.DeadlineKey(true, o, v)) }
func (d onScheduler) ReserveHeld(o, v string, at time.Time) {
	(*d.s).Schedule(app.DeadlineKey(false, o, v), at, nil)
}
func (d onScheduler) ReserveDone(o, v string) { (*d.s).Cancel(app.DeadlineKey(false, o, v)) }

// Across reopens nothing is told and nothing is lost: a view attached to a
// stored space tells its Deadlines nothing and keeps by due time exactly
// the windows and reserves a view that never closed was told are open. A
// real stored scheduler (pkg/deadline) over the reopened view, holding two,
// holds the earliest two, follows the events folded after the reopen, and
// fires every one of them in order as its fake clock passes them; a second
// reopen keeps them still (the fires here decide nothing).
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
	reopen := func(d app.Deadlines) *app.LedgerView {
		t.Helper()
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		var v *app.LedgerView
		v, db = attachedLedger(t, dir, d)
		return v
	}
	keeps := func(v *app.LedgerView) {
		t.Helper()
		if got := stored(t, v); got.String() != refSched.String() {
			t.Fatalf("the view keeps\n%s\nwant\n%s", got, refSched)
		}
	}

	second := &calls{}
	keeps(reopen(second))
	if len(*second) != 0 {
		t.Fatalf("Attach told %v", *second)
	}

	// A stored scheduler holding two, on a clock before every deadline.
	const held = 2
	clk := clock.NewFake(t0.Add(-time.Hour))
	var sch *deadline.Scheduler
	var mu sync.Mutex
	var fired []string
	v = reopen(onScheduler{&sch})
	sch = deadline.NewStored("payouts", clk, slog.New(slog.DiscardHandler), deadline.Stored{Store: v, Held: held,
		Fire: func(_ context.Context, key string, at time.Time) error {
			window, o, vendor, ok := app.DeadlinePart(key)
			what := "reserve"
			if window {
				what = "window"
			}
			mu.Lock()
			fired = append(fired, fmt.Sprintf("%s/%s/%s %v", what, o, vendor, ok))
			mu.Unlock()
			return nil
		}})
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan struct{})
	go func() { sch.Run(ctx); close(ran) }()
	defer func() { cancel(); <-ran }()
	// earliest is the keys of the n earliest deadlines of want.
	earliest := func(want scheduled, n int) []string {
		keys := slices.Collect(maps.Keys(want))
		slices.SortFunc(keys, func(a, b string) int {
			return cmp.Or(want[a].Compare(want[b]), cmp.Compare(a, b))
		})
		return keys[:min(n, len(keys))]
	}
	holdsEarliest := func() {
		t.Helper()
		if n := sch.Pending(); n > held {
			t.Fatalf("the scheduler holds %d deadlines, the bound is %d", n, held)
		}
		for _, k := range earliest(refSched, 1) {
			what, part, _ := strings.Cut(k, "/")
			o, vendor, _ := strings.Cut(part, "/")
			if at, ok := sch.When(app.DeadlineKey(what == "window", o, vendor)); !ok || !at.Equal(refSched[k]) {
				t.Fatalf("the earliest deadline %s (%v) is not held: %v %v", k, refSched[k], at, ok)
			}
		}
	}
	platformtest.Until(t, "the scheduler to read the view", func() bool { return sch.Pending() == held })
	holdsEarliest()
	for i, m := range after {
		pos := uint64(len(before) + i + 1)
		fold(t, ref, pos, m)
		fold(t, v, pos, m)
		holdsEarliest()
	}
	keeps(v)
	want := earliest(refSched, len(refSched))
	for i, k := range want {
		want[i] = k + " true"
	}
	for range 30 {
		clk.Advance(24 * time.Hour)
		if n := sch.Pending(); n > held {
			t.Fatalf("the scheduler holds %d deadlines, the bound is %d", n, held)
		}
	}
	platformtest.Until(t, "every deadline to fire", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(fired) >= len(want)
	})
	cancel()
	<-ran
	if strings.Join(fired, "\n") != strings.Join(want, "\n") {
		t.Fatalf("fired\n%s\nwant\n%s", strings.Join(fired, "\n"), strings.Join(want, "\n"))
	}

	third := &calls{}
	keeps(reopen(third))
	if len(*third) != 0 {
		t.Fatalf("Attach told %v", *third)
	}
}
