package payouts_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/bus"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/payouts/app"
)

// An open claim holds the money past the window; closing it releases.
// A claim opened before delivery holds too.
func TestClaimHoldsRelease(t *testing.T) {
	e := shared
	vendor := uniq("v")
	owner := "vendor:" + vendor
	o := uniq("o")
	// 20.00: fee 1.00, vendor 19.00 = reserve 0.95 + net 18.05.
	e.confirm(t, e.confirmed(o, "", line("1", vendor, 2, 1000, "", 0)))
	e.deliver(t, o, vendor)
	e.waitBalance(t, owner, bal{pending: 1900})

	claim := uniq("cl")
	e.claimOpened(t, claim, o, vendor, 1000)
	e.waitBalance(t, owner, bal{held: 1900})
	e.advance(8 * day)
	e.settled(t)
	part := e.waitStage(t, o, vendor, payoutsv1.FundsStage_FUNDS_STAGE_HELD)
	if !slices.Equal(part.GetOpenClaimIds(), []string{claim}) {
		t.Fatalf("open claims %v", part.GetOpenClaimIds())
	}
	eventually(t, func() error { // the window closed: the fact is booked, the money stays held
		for _, ev := range e.ledgerEvents(t, o) {
			if _, ok := ev.(*payoutsv1.ReturnWindowClosed); ok {
				return nil
			}
		}
		return fmt.Errorf("no ReturnWindowClosed yet")
	})
	if b := balOf(e.balance(t, owner)); b != (bal{held: 1900}) {
		t.Fatalf("released under an open claim: %+v", b)
	}
	e.claimClosed(t, claim, o, vendor, "rejected")
	e.waitBalance(t, owner, bal{available: 1805, reserve: 95})

	// A claim before delivery: the delivery goes to held, and a refund
	// while held comes out of held.
	o2 := uniq("o")
	e.confirm(t, e.confirmed(o2, "", line("1", vendor, 1, 1000, "", 0)))
	claim2 := uniq("cl")
	e.claimOpened(t, claim2, o2, vendor, 1000)
	e.deliver(t, o2, vendor)
	e.waitStage(t, o2, vendor, payoutsv1.FundsStage_FUNDS_STAGE_HELD)
	e.waitBalance(t, owner, bal{held: 950, available: 1805, reserve: 95})
	e.refunded(t, uniq("rf"), o2, vendor, 1000)
	e.claimClosed(t, claim2, o2, vendor, "refunded")
	e.waitBalance(t, owner, bal{available: 1805, reserve: 95})
	e.advance(8 * day)
	e.waitStage(t, o2, vendor, payoutsv1.FundsStage_FUNDS_STAGE_RELEASED)
	if s := e.settlement(t, o2); s.GetRefunded().GetAmountMinor() != 1000 {
		t.Fatalf("settlement %v", s)
	}
}

// A refund before delivery comes out of escrow; a cancellation returns the
// rest; neither touches anyone's available balance.
func TestRefundAndCancelBeforeDelivery(t *testing.T) {
	e := shared
	v1, v2 := uniq("v"), uniq("v")
	o := uniq("o")
	e.confirm(t, e.confirmed(o, "", line("1", v1, 1, 4999, "", 0), line("2", v2, 1, 1001, "", 0)))
	e.waitBalance(t, "vendor:"+v1, bal{escrow: 4999})
	e.refunded(t, uniq("rf"), o, v1, 999)
	e.waitBalance(t, "vendor:"+v1, bal{escrow: 4000})
	// The fulfilment of v2 is cancelled (ship-by missed), then the order.
	f := "f" + es.DeriveID(o, v2)[:16]
	e.emit(t, "fulfilment", "fulfilment-"+f, &fulfilmentv1.FulfilmentCancelled{FulfilmentId: f, OrderId: o, VendorId: v2, Reason: "ship-by missed"})
	e.waitBalance(t, "vendor:"+v2, bal{})
	e.emit(t, "order", "order-"+o, &orderv1.OrderCancelled{OrderId: o, Reason: "changed my mind", CancelledBy: "buyer:b"})
	e.waitBalance(t, "vendor:"+v1, bal{})
	s := e.settlement(t, o)
	if s.GetRefunded().GetAmountMinor() != 6000 {
		t.Fatalf("refunded %d, want all 60.00", s.GetRefunded().GetAmountMinor())
	}
	for _, p := range s.GetParts() {
		if p.GetStage() != payoutsv1.FundsStage_FUNDS_STAGE_CANCELLED {
			t.Fatalf("part %s is %s", p.GetVendorId(), p.GetStage())
		}
	}
	// The buyer got back exactly what was captured, once: the ledger's
	// entries for the order tell the whole story.
	resp, err := e.as(t, "support").ListLedgerEntries(t.Context(), &payoutsv1.ListLedgerEntriesRequest{OrderId: o})
	if err != nil {
		t.Fatal(err)
	}
	var refunded int64
	for _, en := range resp.GetEntries() {
		if en.GetAccount() == "buyers:refunds" {
			refunded += en.GetAmount().GetAmountMinor()
		}
	}
	if refunded != 6000 {
		t.Fatalf("buyers:refunds got %d for the order", refunded)
	}
}

// The trust tier sizes the window and the reserve: a vendor on watch waits
// a week longer and leaves 15%; a gold vendor leaves nothing.
func TestTrustTiers(t *testing.T) {
	e := shared
	watch, gold := uniq("v"), uniq("v")
	e.tier(t, watch, "watch")
	e.tier(t, gold, "gold")
	o := uniq("o")
	// 100.00 each: fee 5.00, vendor 95.00.
	e.confirm(t, e.confirmed(o, "", line("1", watch, 1, 10000, "", 0), line("2", gold, 1, 10000, "", 0)))
	e.deliver(t, o, watch)
	e.deliver(t, o, gold)
	p := e.waitStage(t, o, watch, payoutsv1.FundsStage_FUNDS_STAGE_PENDING)
	if p.GetTier() != "watch" || !p.GetWindowCloseTime().AsTime().Equal(e.clock.Now().Add(14*day)) {
		t.Fatalf("watch part %v", p)
	}
	e.advance(7 * day)
	e.waitBalance(t, "vendor:"+gold, bal{available: 9500})
	e.settled(t)
	if b := balOf(e.balance(t, "vendor:"+watch)); b != (bal{pending: 9500}) {
		t.Fatalf("watch vendor released early: %+v", b)
	}
	e.advance(7 * day)
	// 15% of 95.00 = 14.25 in reserve, 80.75 net.
	e.waitBalance(t, "vendor:"+watch, bal{available: 8075, reserve: 1425})
	p = e.waitStage(t, o, watch, payoutsv1.FundsStage_FUNDS_STAGE_RELEASED)
	if p.GetReserve().GetAmountMinor() != 1425 || !p.GetReserveReleaseTime().AsTime().Equal(e.clock.Now().Add(30*day)) {
		t.Fatalf("reserve %v", p)
	}
	e.advance(30 * day)
	e.waitBalance(t, "vendor:"+watch, bal{available: 9500})
}

// Deadlines are in memory: a window that closes while the service is down
// releases right after it comes back, once.
func TestWindowClosesAfterRestart(t *testing.T) {
	e := shared
	vendor := uniq("v")
	o := uniq("o")
	e.confirm(t, e.confirmed(o, "", line("1", vendor, 1, 2000, "", 0)))
	e.deliver(t, o, vendor)
	e.waitBalance(t, "vendor:"+vendor, bal{pending: 1900})
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	e.advance(8 * day)
	if err := e.restart(); err != nil {
		t.Fatal(err)
	}
	e.waitBalance(t, "vendor:"+vendor, bal{available: 1805, reserve: 95})
	// And a restart after the release books nothing again.
	before := e.ownPosition(t)
	if err := e.restart(); err != nil {
		t.Fatal(err)
	}
	e.settled(t)
	if after := e.ownPosition(t); after != before {
		t.Fatalf("a restart wrote %d events", after-before)
	}
	e.waitBalance(t, "vendor:"+vendor, bal{available: 1805, reserve: 95})
}

// Replaying events changes nothing: the same events re-published under new
// event ids (a producer retrying after a crash) and every upstream event
// re-read by new consumers book nothing.
func TestReplayedEventsChangeNothing(t *testing.T) {
	e := shared
	vendor, creator := uniq("v"), uniq("c")
	o := uniq("o")
	oc := e.confirmed(o, creator, line("1", vendor, 1, 5000, creator, 1500))
	e.confirm(t, oc)
	e.deliver(t, o, vendor)
	claim := uniq("cl")
	e.claimOpened(t, claim, o, vendor, 100)
	rf := uniq("rf")
	e.refunded(t, rf, o, vendor, 100)
	e.claimClosed(t, claim, o, vendor, "refunded")
	e.advance(8 * day)
	e.waitStage(t, o, vendor, payoutsv1.FundsStage_FUNDS_STAGE_RELEASED)
	e.settled(t)
	before := e.ownPosition(t)
	want := balOf(e.balance(t, "vendor:"+vendor))

	// The same facts again, under new event ids.
	e.confirm(t, oc)
	e.deliver(t, o, vendor)
	e.claimOpened(t, claim, o, vendor, 100)
	e.refunded(t, rf, o, vendor, 100)
	e.claimClosed(t, claim, o, vendor, "refunded")
	e.settled(t)
	if after := e.ownPosition(t); after != before {
		t.Fatalf("replayed facts wrote %d events: %v", after-before, e.ledgerEvents(t, o))
	}
	if got := balOf(e.balance(t, "vendor:"+vendor)); got != want {
		t.Fatalf("balance moved: %+v, was %+v", got, want)
	}
}

// A delivery and a refund that overtake their order's confirmation (a
// lagging consumer, a replay) book once the order is confirmed, with the
// capture first.
func TestEventsBeforeTheirOrder(t *testing.T) {
	e := shared
	vendor := uniq("v")
	o := uniq("o")
	e.deliver(t, o, vendor)
	e.refunded(t, uniq("rf"), o, vendor, 500)
	e.tried(t, "fulfilment", app.FulfilmentConsumer) // the delivery was tried before its order existed
	e.tried(t, "trust", app.TrustConsumer)
	e.confirm(t, e.confirmed(o, "", line("1", vendor, 1, 2000, "", 0)))
	// 15.00 left in the window: fee 0.75, vendor 14.25.
	e.waitBalance(t, "vendor:"+vendor, bal{pending: 1425})
	s := e.settlement(t, o)
	if s.GetRefunded().GetAmountMinor() != 500 || s.GetParts()[0].GetStage() != payoutsv1.FundsStage_FUNDS_STAGE_PENDING {
		t.Fatalf("settlement %v", s)
	}
	evs := e.ledgerEvents(t, o)
	if _, ok := evs[0].(*payoutsv1.FundsEscrowed); !ok {
		t.Fatalf("the ledger starts with %T", evs[0])
	}
}

// An event the ledger cannot book (a vendor the order does not have) is
// parked on the dead-letter stream, where audit sees it, at once.
func TestUnbookableEventsAreParked(t *testing.T) {
	e := shared
	vendor := uniq("v")
	o := uniq("o")
	e.confirm(t, e.confirmed(o, "", line("1", vendor, 1, 2000, "", 0)))
	stranger := uniq("v")
	recs := e.claimOpenedRecs(t, uniq("cl"), o, stranger)
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, func() error {
		parked, err := bus.ListParked(t.Context(), js, app.TrustConsumer)
		if err != nil {
			return err
		}
		for _, p := range parked {
			if p.EventID == recs[0].ID {
				if !strings.Contains(p.Reason, "no part for vendor "+stranger) {
					return fmt.Errorf("parked for %q", p.Reason)
				}
				return nil
			}
		}
		return fmt.Errorf("not parked")
	})
}

func (e *env) claimOpenedRecs(t testing.TB, claimID, orderID, vendor string) []eventstore.RecordedEvent {
	t.Helper()
	return e.emit(t, "trust", "claim-"+claimID, &trustv1.ClaimOpened{ClaimId: claimID, OrderId: orderID, VendorId: vendor,
		ClaimedAmount: eur(1), OpenTime: timestamppb.New(e.clock.Now())})
}

// Concurrent payout runs with different request ids never pay the same
// money twice.
func TestConcurrentRunsPayOnce(t *testing.T) {
	e := shared
	vendor := uniq("v")
	o := uniq("o")
	e.tier(t, vendor, "gold")
	e.confirm(t, e.confirmed(o, "", line("1", vendor, 1, 3000, "", 0)))
	e.deliver(t, o, vendor)
	e.waitStage(t, o, vendor, payoutsv1.FundsStage_FUNDS_STAGE_PENDING)
	e.advance(8 * day)
	e.waitBalance(t, "vendor:"+vendor, bal{available: 2850})
	results := make(chan int64, 8)
	for range 8 {
		go func() {
			resp, err := e.as(t, "platform").RunPayouts(context.Background(), &payoutsv1.RunPayoutsRequest{RequestId: uniq("run-")})
			if err != nil {
				results <- -1
				return
			}
			results <- paidTo(resp.GetBatch(), "vendor:"+vendor)
		}()
	}
	var total int64
	for range 8 {
		r := <-results
		if r < 0 {
			t.Fatal("a run failed")
		}
		total += r
	}
	if total != 2850 {
		t.Fatalf("8 concurrent runs paid %d in all, want 28.50 once", total)
	}
	e.waitBalance(t, "vendor:"+vendor, bal{paid: 2850})
}

// Every entry of the ledger, paged, balances per transaction; the pages
// neither repeat nor skip.
func TestLedgerEntriesPageAndBalance(t *testing.T) {
	e := shared
	// Its own order, so the ledger has entries however the tests are run.
	order, vendor := uniq("opage"), uniq("vpage")
	e.confirm(t, e.confirmed(order, "", line("1", vendor, 3, 333, "", 0), line("2", vendor, 1, 101, "", 0)))
	e.waitBalance(t, "vendor:"+vendor, bal{escrow: 1100})
	var all []*payoutsv1.LedgerEntry
	token := ""
	for {
		resp, err := e.as(t, "platform").ListLedgerEntries(t.Context(), &payoutsv1.ListLedgerEntriesRequest{PageSize: 7, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, resp.GetEntries()...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(all) == 0 {
		t.Fatal("the ledger lists no entries")
	}
	sums := map[string]int64{}
	seen := map[string]bool{}
	totals := map[string]int64{}
	for _, en := range all {
		if seen[en.GetEntryId()] {
			t.Fatalf("entry %s listed twice", en.GetEntryId())
		}
		seen[en.GetEntryId()] = true
		sums[en.GetTransactionId()+en.GetAmount().GetCurrencyCode()] += en.GetAmount().GetAmountMinor()
		totals[en.GetAmount().GetCurrencyCode()] += en.GetAmount().GetAmountMinor()
	}
	for tx, s := range sums {
		if s != 0 {
			t.Errorf("transaction %s sums to %d", tx, s)
		}
	}
	// money in = money out + balances
	b := map[string]*payoutsv1.GetBalanceResponse{}
	for _, owner := range []string{"buyers", "payouts"} {
		resp, err := e.as(t, "support").GetBalance(t.Context(), &payoutsv1.GetBalanceRequest{Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		b[owner] = resp
	}
	var in, out int64
	for _, a := range b["buyers"].GetAccounts() {
		if a.GetAccount() == "buyers:payments" {
			in -= a.GetBalance().GetAmountMinor()
		} else {
			out += a.GetBalance().GetAmountMinor()
		}
	}
	for _, a := range b["payouts"].GetAccounts() {
		out += a.GetBalance().GetAmountMinor()
	}
	var internal int64
	for _, en := range all {
		if !strings.HasPrefix(en.GetAccount(), "buyers:") && !strings.HasPrefix(en.GetAccount(), "payouts:") {
			internal += en.GetAmount().GetAmountMinor()
		}
	}
	if in <= 0 || in != out+internal {
		t.Fatalf("money in %d != out %d + balances %d", in, out, internal)
	}
}
