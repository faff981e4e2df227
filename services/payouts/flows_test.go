package payouts_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/bus"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/platform/platformtest"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	"github.com/custody/custody/services/payouts"
	"github.com/custody/custody/services/payouts/app"
)

// An open claim holds the money past the window; closing it releases.
// A claim opened before delivery holds too.
func TestClaimHoldsRelease(t *testing.T) {
	vendor := id("v")
	owner := "vendor:" + vendor
	o := id("o")
	// 20.00: fee 1.00, vendor 19.00 = reserve 0.95 + net 18.05.
	confirm(t, confirmed(o, "", line("1", vendor, 2, 1000, "", 0)))
	deliver(t, o, vendor)
	waitBalance(t, owner, bal{pending: 1900})

	claim := id("cl")
	claimOpened(t, claim, o, vendor, 1000)
	waitBalance(t, owner, bal{held: 1900})
	clk.Advance(8 * day)
	p.Settled(t)
	part := waitStage(t, o, vendor, payoutsv1.FundsStage_FUNDS_STAGE_HELD)
	if !slices.Equal(part.GetOpenClaimIds(), []string{claim}) {
		t.Fatalf("open claims %v", part.GetOpenClaimIds())
	}
	platformtest.Eventually(t, "ReturnWindowClosed", func() error { // the window closed: the fact is booked, the money stays held
		for _, ev := range ledgerEvents(t, o) {
			if _, ok := ev.(*payoutsv1.ReturnWindowClosed); ok {
				return nil
			}
		}
		return fmt.Errorf("no ReturnWindowClosed yet")
	})
	if b := balOf(balance(t, owner)); b != (bal{held: 1900}) {
		t.Fatalf("released under an open claim: %+v", b)
	}
	claimClosed(t, claim, o, vendor, "rejected")
	waitBalance(t, owner, bal{available: 1805, reserve: 95})

	// A claim before delivery: the delivery goes to held, and a refund
	// while held comes out of held.
	o2 := id("o")
	confirm(t, confirmed(o2, "", line("1", vendor, 1, 1000, "", 0)))
	claim2 := id("cl")
	claimOpened(t, claim2, o2, vendor, 1000)
	deliver(t, o2, vendor)
	waitStage(t, o2, vendor, payoutsv1.FundsStage_FUNDS_STAGE_HELD)
	waitBalance(t, owner, bal{held: 950, available: 1805, reserve: 95})
	refunded(t, id("rf"), o2, vendor, 1000)
	claimClosed(t, claim2, o2, vendor, "refunded")
	waitBalance(t, owner, bal{available: 1805, reserve: 95})
	clk.Advance(8 * day)
	waitStage(t, o2, vendor, payoutsv1.FundsStage_FUNDS_STAGE_RELEASED)
	if s := settlement(t, o2); s.GetRefunded().GetAmountMinor() != 1000 {
		t.Fatalf("settlement %v", s)
	}
}

// A refund before delivery comes out of escrow; a cancellation returns the
// rest; neither touches anyone's available balance.
func TestRefundAndCancelBeforeDelivery(t *testing.T) {
	v1, v2 := id("v"), id("v")
	o := id("o")
	confirm(t, confirmed(o, "", line("1", v1, 1, 4999, "", 0), line("2", v2, 1, 1001, "", 0)))
	waitBalance(t, "vendor:"+v1, bal{escrow: 4999})
	refunded(t, id("rf"), o, v1, 999)
	waitBalance(t, "vendor:"+v1, bal{escrow: 4000})
	// The fulfilment of v2 is cancelled (ship-by missed), then the order.
	f := "f" + es.DeriveID(o, v2)[:16]
	p.Emit(t, "fulfilment", "fulfilment-"+f, &fulfilmentv1.FulfilmentCancelled{FulfilmentId: f, OrderId: o, VendorId: v2, Reason: "ship-by missed"})
	waitBalance(t, "vendor:"+v2, bal{})
	p.Emit(t, "order", "order-"+o, &orderv1.OrderCancelled{OrderId: o, Reason: "changed my mind", CancelledBy: "buyer:b"})
	waitBalance(t, "vendor:"+v1, bal{})
	s := settlement(t, o)
	if s.GetRefunded().GetAmountMinor() != 6000 {
		t.Fatalf("refunded %d, want all 60.00", s.GetRefunded().GetAmountMinor())
	}
	for _, part := range s.GetParts() {
		if part.GetStage() != payoutsv1.FundsStage_FUNDS_STAGE_CANCELLED {
			t.Fatalf("part %s is %s", part.GetVendorId(), part.GetStage())
		}
	}
	// The buyer got back exactly what was captured, once: the ledger's
	// entries for the order tell the whole story.
	resp, err := as(t, "support").ListLedgerEntries(t.Context(), &payoutsv1.ListLedgerEntriesRequest{OrderId: o})
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
	// The escrow returned on the order's cancellation says who cancelled,
	// not the buyer's words: those are sealed under the buyer's key on the
	// order's event, and the ledger's events name no buyer.
	var reasons []string
	for _, e := range ledgerEvents(t, o) {
		if r, ok := e.(*payoutsv1.EscrowReturned); ok {
			reasons = append(reasons, r.GetReason())
		}
	}
	if !slices.Contains(reasons, "order cancelled by buyer:b") || slices.ContainsFunc(reasons, func(r string) bool { return strings.Contains(r, "changed my mind") }) {
		t.Errorf("EscrowReturned reasons %q, want who cancelled, without the buyer's words", reasons)
	}
}

// The trust tier sizes the window and the reserve: a vendor on watch waits
// a week longer and leaves 15%; a gold vendor leaves nothing.
func TestTrustTiers(t *testing.T) {
	watch, gold := id("v"), id("v")
	tier(t, watch, "watch")
	tier(t, gold, "gold")
	o := id("o")
	// 100.00 each: fee 5.00, vendor 95.00.
	confirm(t, confirmed(o, "", line("1", watch, 1, 10000, "", 0), line("2", gold, 1, 10000, "", 0)))
	deliver(t, o, watch)
	deliver(t, o, gold)
	part := waitStage(t, o, watch, payoutsv1.FundsStage_FUNDS_STAGE_PENDING)
	if part.GetTier() != "watch" || !part.GetWindowCloseTime().AsTime().Equal(clk.Now().Add(14*day)) {
		t.Fatalf("watch part %v", part)
	}
	clk.Advance(7 * day)
	waitBalance(t, "vendor:"+gold, bal{available: 9500})
	p.Settled(t)
	if b := balOf(balance(t, "vendor:"+watch)); b != (bal{pending: 9500}) {
		t.Fatalf("watch vendor released early: %+v", b)
	}
	clk.Advance(7 * day)
	// 15% of 95.00 = 14.25 in reserve, 80.75 net.
	waitBalance(t, "vendor:"+watch, bal{available: 8075, reserve: 1425})
	part = waitStage(t, o, watch, payoutsv1.FundsStage_FUNDS_STAGE_RELEASED)
	if part.GetReserve().GetAmountMinor() != 1425 || !part.GetReserveReleaseTime().AsTime().Equal(clk.Now().Add(30*day)) {
		t.Fatalf("reserve %v", part)
	}
	clk.Advance(30 * day)
	waitBalance(t, "vendor:"+watch, bal{available: 9500})
}

// Commission is booked on exactly the lines the order attributed: the
// order service decided attribution (against its window, when the order
// was placed), so however long before the confirmation the touch was, the
// ledger books what the order recorded — and nothing on a line it left
// unattributed.
func TestCommissionAsTheOrderRecorded(t *testing.T) {
	vendor, creator := id("v"), id("c")
	o := id("o")
	oc := confirmed(o, creator, line("1", vendor, 1, 10000, creator, 1000), line("2", vendor, 1, 10000, "", 0))
	oc.Attribution.TouchTime = timestamppb.New(clk.Now().Add(-30 * day)) // longer ago than any window
	confirm(t, oc)
	deliver(t, o, vendor)
	// line 1: commission 10.00, fee 5.00, vendor 85.00; line 2: fee 5.00, vendor 95.00.
	waitBalance(t, "creator:"+creator, bal{pending: 1000})
	waitBalance(t, "vendor:"+vendor, bal{pending: 8500 + 9500})
	fe, ok := ledgerEvents(t, o)[0].(*payoutsv1.FundsEscrowed)
	if !ok {
		t.Fatal("the ledger does not start with FundsEscrowed")
	}
	lines := fe.GetParts()[0].GetLines()
	if fe.GetCommissionNote() != "" || lines[0].GetCreatorId() != creator || lines[0].GetCommission().GetAmountMinor() != 1000 ||
		lines[1].GetCreatorId() != "" || lines[1].GetCommission().GetAmountMinor() != 0 {
		t.Fatalf("split %v", fe)
	}
}

// Deadlines are in memory: a window that closes while the service is down
// releases right after it comes back, once.
func TestWindowClosesAfterRestart(t *testing.T) {
	vendor := id("v")
	o := id("o")
	confirm(t, confirmed(o, "", line("1", vendor, 1, 2000, "", 0)))
	deliver(t, o, vendor)
	waitBalance(t, "vendor:"+vendor, bal{pending: 1900})
	p.Stop(t)
	clk.Advance(8 * day)
	p.Restart(t)
	waitBalance(t, "vendor:"+vendor, bal{available: 1805, reserve: 95})
	// And a restart after the release books nothing again.
	before := p.LastPosition(t, payouts.Name)
	p.Restart(t)
	p.Settled(t)
	if after := p.LastPosition(t, payouts.Name); after != before {
		t.Fatalf("a restart wrote %d events", after-before)
	}
	waitBalance(t, "vendor:"+vendor, bal{available: 1805, reserve: 95})
}

// Replaying events changes nothing: the same events re-published under new
// event ids (a producer retrying after a crash) and every upstream event
// re-read by new consumers book nothing.
func TestReplayedEventsChangeNothing(t *testing.T) {
	vendor, creator := id("v"), id("c")
	o := id("o")
	oc := confirmed(o, creator, line("1", vendor, 1, 5000, creator, 1500))
	confirm(t, oc)
	deliver(t, o, vendor)
	claim := id("cl")
	claimOpened(t, claim, o, vendor, 100)
	rf := id("rf")
	refunded(t, rf, o, vendor, 100)
	claimClosed(t, claim, o, vendor, "refunded")
	clk.Advance(8 * day)
	waitStage(t, o, vendor, payoutsv1.FundsStage_FUNDS_STAGE_RELEASED)
	p.Settled(t)
	before := p.LastPosition(t, payouts.Name)
	want := balOf(balance(t, "vendor:"+vendor))

	// The same facts again, under new event ids.
	confirm(t, oc)
	deliver(t, o, vendor)
	claimOpened(t, claim, o, vendor, 100)
	refunded(t, rf, o, vendor, 100)
	claimClosed(t, claim, o, vendor, "refunded")
	p.Settled(t)
	if after := p.LastPosition(t, payouts.Name); after != before {
		t.Fatalf("replayed facts wrote %d events: %v", after-before, ledgerEvents(t, o))
	}
	if got := balOf(balance(t, "vendor:"+vendor)); got != want {
		t.Fatalf("balance moved: %+v, was %+v", got, want)
	}
}

// A delivery and a refund that overtake their order's confirmation (a
// lagging consumer, a replay) book once the order is confirmed, with the
// capture first.
func TestEventsBeforeTheirOrder(t *testing.T) {
	vendor := id("v")
	o := id("o")
	delivered := deliver(t, o, vendor)
	refund := refunded(t, id("rf"), o, vendor, 500)
	waitTried(t, delivered[1], refund[0]) // both were tried before their order existed
	confirm(t, confirmed(o, "", line("1", vendor, 1, 2000, "", 0)))
	// 15.00 left in the window: fee 0.75, vendor 14.25.
	waitBalance(t, "vendor:"+vendor, bal{pending: 1425})
	s := settlement(t, o)
	if s.GetRefunded().GetAmountMinor() != 500 || s.GetParts()[0].GetStage() != payoutsv1.FundsStage_FUNDS_STAGE_PENDING {
		t.Fatalf("settlement %v", s)
	}
	evs := ledgerEvents(t, o)
	if _, ok := evs[0].(*payoutsv1.FundsEscrowed); !ok {
		t.Fatalf("the ledger starts with %T", evs[0])
	}
}

// An event the ledger cannot book (a vendor the order does not have) is
// parked on the dead-letter stream, where audit sees it, at once.
func TestUnbookableEventsAreParked(t *testing.T) {
	vendor := id("v")
	o := id("o")
	confirm(t, confirmed(o, "", line("1", vendor, 1, 2000, "", 0)))
	stranger := id("v")
	recs := claimOpened(t, id("cl"), o, stranger, 1)
	js, err := jetstream.New(p.NATS)
	if err != nil {
		t.Fatal(err)
	}
	platformtest.Eventually(t, "the claim parked", func() error {
		parked, err := bus.ListParked(t.Context(), js, app.TrustConsumer)
		if err != nil {
			return err
		}
		for _, pk := range parked {
			if pk.EventID == recs[0].ID {
				if !strings.Contains(pk.Reason, "no part for vendor "+stranger) {
					return fmt.Errorf("parked for %q", pk.Reason)
				}
				return nil
			}
		}
		return fmt.Errorf("not parked")
	})
}

// Concurrent payout runs with different request ids never pay the same
// money twice.
func TestConcurrentRunsPayOnce(t *testing.T) {
	vendor := id("v")
	o := id("o")
	tier(t, vendor, "gold")
	confirm(t, confirmed(o, "", line("1", vendor, 1, 3000, "", 0)))
	deliver(t, o, vendor)
	waitStage(t, o, vendor, payoutsv1.FundsStage_FUNDS_STAGE_PENDING)
	clk.Advance(8 * day)
	waitBalance(t, "vendor:"+vendor, bal{available: 2850})
	results := make(chan int64, 8)
	platform := as(t, "platform")
	for range 8 {
		go func() {
			resp, err := platform.RunPayouts(t.Context(), &payoutsv1.RunPayoutsRequest{RequestId: id("run-")})
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
	waitBalance(t, "vendor:"+vendor, bal{paid: 2850})
}

// Every entry of the ledger, paged, balances per transaction; the pages
// neither repeat nor skip.
func TestLedgerEntriesPageAndBalance(t *testing.T) {
	// Its own order, so the ledger has entries however the tests are run.
	order, vendor := id("opage"), id("vpage")
	confirm(t, confirmed(order, "", line("1", vendor, 3, 333, "", 0), line("2", vendor, 1, 101, "", 0)))
	waitBalance(t, "vendor:"+vendor, bal{escrow: 1100})
	var all []*payoutsv1.LedgerEntry
	token := ""
	for {
		resp, err := as(t, "platform").ListLedgerEntries(t.Context(), &payoutsv1.ListLedgerEntriesRequest{PageSize: 7, PageToken: token})
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
		resp, err := as(t, "support").GetBalance(t.Context(), &payoutsv1.GetBalanceRequest{Owner: owner})
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

// Lines cancelled before shipping (OrderLinesCancelled): a three-line order
// with a creator on every line, one line and two of another's five units
// cancelled; the buyer gets exactly those units' price back from escrow,
// and at release the creator's commission, the fee and the vendor's share
// are those of what remains. A second vendor's part with every unit
// cancelled is closed: never delivered, never released. OrderPartCancelled
// (the order's record of a FulfilmentCancelled) moves nothing; a replayed
// OrderLinesCancelled neither.
func TestLinesCancelledBeforeShipping(t *testing.T) {
	vendor, other, creator := id("v"), id("v"), id("c")
	o := id("o")
	// line 1: 30.00, line 2: 5 × 10.00, line 3: 20.00 (all at 10% to the creator); other's line 4: 15.00.
	confirm(t, confirmed(o, creator, line("1", vendor, 1, 3000, creator, 1000), line("2", vendor, 5, 1000, creator, 1000),
		line("3", vendor, 1, 2000, creator, 1000), line("4", other, 1, 1500, "", 0)))
	waitBalance(t, "vendor:"+vendor, bal{escrow: 10000})
	lc := &orderv1.OrderLinesCancelled{OrderId: o, Lines: []*orderv1.CancelledLine{
		{LineId: "3", SkuId: "sku-3", VendorId: vendor, Quantity: 1, Amount: eur(2000)},
		{LineId: "2", SkuId: "sku-2", VendorId: vendor, Quantity: 2, Amount: eur(2000)},
		{LineId: "4", SkuId: "sku-4", VendorId: other, Quantity: 1, Amount: eur(1500)},
	}, Refund: eur(5500), RefundedTotal: eur(5500), ClosedVendorIds: []string{other}, Reason: "out of stock", CancelledBy: "vendor:" + vendor}
	p.Emit(t, "order", "order-"+o, lc)
	waitBalance(t, "vendor:"+vendor, bal{escrow: 6000})
	waitBalance(t, "vendor:"+other, bal{})
	waitStage(t, o, other, payoutsv1.FundsStage_FUNDS_STAGE_CANCELLED)
	// Again, as a redelivery would, and the order's record of a part's
	// cancellation: nothing moves.
	p.Emit(t, "order", "order-"+o, lc)
	p.Emit(t, "order", "order-"+o, &orderv1.OrderPartCancelled{OrderId: o, VendorId: vendor, Reason: "ship-by missed", CancelledBy: "service:fulfilment",
		Refund: eur(6000), RefundedTotal: eur(11500)})
	p.Settled(t)
	if s := settlement(t, o); s.GetRefunded().GetAmountMinor() != 5500 {
		t.Fatalf("refunded %d, want 55.00", s.GetRefunded().GetAmountMinor())
	}
	deliver(t, o, vendor)
	// What remains: 30.00 + 3 × 10.00 = 60.00: commission 6.00, fee 3.00, vendor 51.00.
	waitBalance(t, "creator:"+creator, bal{pending: 600})
	clk.Advance(8 * day)
	// standard tier, 5% reserve: 2.55, net 48.45.
	waitBalance(t, "vendor:"+vendor, bal{available: 4845, reserve: 255})
	waitBalance(t, "creator:"+creator, bal{available: 600})
	for _, ev := range ledgerEvents(t, o) {
		if fr, ok := ev.(*payoutsv1.FundsReleased); ok && fr.GetVendorId() == other {
			t.Fatalf("the closed part was released: %v", fr)
		}
	}
	s := settlement(t, o)
	var refunds int64
	resp, err := as(t, "support").ListLedgerEntries(t.Context(), &payoutsv1.ListLedgerEntriesRequest{OrderId: o})
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range resp.GetEntries() {
		if en.GetAccount() == "buyers:refunds" {
			refunds += en.GetAmount().GetAmountMinor()
		}
	}
	if refunds != 5500 || s.GetRefunded().GetAmountMinor() != 5500 {
		t.Fatalf("buyers:refunds got %d, settlement refunded %d; want 55.00 once", refunds, s.GetRefunded().GetAmountMinor())
	}
}
