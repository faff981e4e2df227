package app_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/platform/platformtest"
	"github.com/custody/custody/pkg/projection"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/payouts/app"
	"github.com/custody/custody/services/payouts/domain"
)

// TestServiceProperties runs random sequences through the real application
// layer: JetStream stores on a real NATS (platformtest's, with no module
// running: the test hands the events to the reactions itself), the command
// handlers, the read side and the live deadline scheduler (which races the
// test's own calls to close windows and release reserves: both are
// idempotent). It
// redelivers handled events at random, sometimes hands a delivery or a
// refund over before its order's confirmation, and checks after every step
// that the read side equals a fold of the store, that every transaction
// balances and posts once, that money in = money out + balances, that no
// custody account is negative, and that payouts pay exactly the available
// balances; at the end a restarted service rebuilds the same balances and
// writes nothing.
func TestServiceProperties(t *testing.T) {
	seeds := 3
	if testing.Short() {
		seeds = 1
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel() // each seed has its own platform and clock
			runServiceSequence(t, uint64(seed), 45)
		})
	}
}

type harness struct {
	t      *testing.T
	rng    *rand.Rand
	clock  *clock.Fake
	own    *esjs.Store
	deps   projection.Deps // the service's, on the platform's stores
	up     map[string]*esjs.Store
	svc    *app.Service
	stop   func() // stops what start runs
	rmDir  string // the read-model store\'s directory: it outlives a restart
	policy domain.Policy
	n      int

	handled []handledEvent
	orders  []string
	parts   map[string][]string        // order -> vendors
	pending []eventstore.RecordedEvent // OrderConfirmed appended, not yet handed to the service
	claims  map[string][2]string       // open claim -> order, vendor
	runs    []string
}

type handledEvent struct {
	svc string
	rec eventstore.RecordedEvent
}

func runServiceSequence(t *testing.T, seed uint64, steps int) {
	clk := clock.NewFake(time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC))
	p := platformtest.Start(t, platformtest.Options{Clock: clk})
	h := &harness{t: t, rng: rand.New(rand.NewPCG(seed, 42)), clock: clk,
		up: map[string]*esjs.Store{}, parts: map[string][]string{}, claims: map[string][2]string{}, rmDir: t.TempDir()}
	h.policy = domain.DefaultPolicy()
	h.policy.MinPayout = domain.MinPayout{Default: 300}
	h.own, h.deps = p.Store(t, "payouts"), p.AppDeps(t, "payouts")
	for _, svc := range []string{"order", "fulfilment", "trust"} {
		h.up[svc] = p.Store(t, svc)
	}
	h.svc = h.start()
	defer func() { h.stop() }()

	for range steps {
		h.step()
		h.check()
		if t.Failed() {
			t.FailNow()
		}
	}
	// Restart: the read side reopens its stored state and folds what
	// follows, every open deadline is re-scheduled, and nothing is written.
	before := h.fold()
	pos := h.lastPosition()
	h.stop()
	h.svc = h.start()
	if h.lastPosition() != pos {
		t.Fatal("a restart wrote events")
	}
	if got := h.svc.View().Balances(); !equalBalances(got, before) {
		t.Fatalf("after a restart the read side has %v, the store says %v", got, before)
	}
	// Then everything settles: all claims close, time passes, one last run.
	for claim, at := range h.claims {
		h.emitHandle("trust", "claim-"+claim, &trustv1.ClaimClosed{ClaimId: claim, OrderId: at[0], VendorId: at[1], Outcome: "withdrawn"})
	}
	h.advance(50 * 24 * time.Hour)
	h.advance(50 * 24 * time.Hour)
	h.runPayouts()
	h.check()
	for acct, byCur := range h.fold() {
		a, _ := domain.ParseAccount(acct)
		for cur, b := range byCur {
			if (a.Bucket == "pending" || a.Bucket == "held" || a.Bucket == "reserve") && b != 0 {
				t.Errorf("settled, yet %s holds %d %s", acct, b, cur)
			}
			if domain.Payable(acct) && b >= h.policy.MinPayout.For(cur) {
				t.Errorf("settled and paid out, yet %s holds %d %s", acct, b, cur)
			}
		}
	}
}

// start builds the service and runs what the platform's runtime would: the
// read side is attached to its space of the read-model store (reset if new)
// and follows its store from the position stored there, the tier view
// follows trust's, and once the read side has caught up (every open
// deadline scheduled) the deadlines run.
func (h *harness) start() *app.Service {
	log := h.deps.Logger
	svc := app.New(app.Config{Policy: h.policy, ReadWait: 5 * time.Second}, h.deps)
	db, err := kv.Open(h.rmDir, kv.Options{})
	if err != nil {
		h.t.Fatal(err)
	}
	space, err := db.Space("payouts/ledger")
	if err != nil {
		h.t.Fatal(err)
	}
	from, version, err := space.State()
	if err == nil && version != svc.View().Version() {
		from, err = 0, space.Reset(svc.View().Version())
	}
	if err == nil {
		err = svc.View().Attach(space)
	}
	if err != nil {
		h.t.Fatal(err)
	}
	svc.View().Position().Advance(from)
	ctx, cancel := context.WithCancel(h.t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { projection.Follow(ctx, log, h.own, from+1, svc.View().Apply) })
	wg.Go(func() { projection.Follow(ctx, log, h.up["trust"], 1, svc.Tiers().Apply) })
	h.stop = func() { cancel(); wg.Wait(); _ = db.Close() }
	h.waitView(svc)
	wg.Go(func() { svc.RunDeadlines(ctx) })
	return svc
}

func (h *harness) id(prefix string) string { h.n++; return fmt.Sprintf("%s%d", prefix, h.n) }

func (h *harness) emit(svc, stream string, m proto.Message) eventstore.RecordedEvent {
	ed, err := es.Encode(m)
	if err != nil {
		h.t.Fatal(err)
	}
	ed.ID = h.id("ev")
	res, err := h.up[svc].Append(h.t.Context(), stream, eventstore.Any, []eventstore.EventData{ed})
	if err != nil {
		h.t.Fatal(err)
	}
	recs, err := h.up[svc].ReadStream(h.t.Context(), stream, res.LastRevision, 1)
	if err != nil {
		h.t.Fatal(err)
	}
	return recs[0]
}

func (h *harness) handle(svc string, rec eventstore.RecordedEvent) error {
	ctx := h.t.Context()
	switch svc {
	case "order":
		return h.svc.OrderRoutes().Handle(ctx, rec)
	case "fulfilment":
		return h.svc.FulfilmentRoutes().Handle(ctx, rec)
	default:
		return h.svc.TrustRoutes().Handle(ctx, rec)
	}
}

func (h *harness) emitHandle(svc, stream string, m proto.Message) {
	rec := h.emit(svc, stream, m)
	if err := h.handle(svc, rec); err != nil {
		h.t.Fatalf("%s: %v", rec.Type, err)
	}
	h.handled = append(h.handled, handledEvent{svc, rec})
}

func eur(m int64) *typev1.Money { return &typev1.Money{CurrencyCode: "EUR", AmountMinor: m} }

func (h *harness) randomPart() (string, string, bool) {
	if len(h.orders) == 0 {
		return "", "", false
	}
	o := h.orders[h.rng.IntN(len(h.orders))]
	vs := h.parts[o]
	return o, vs[h.rng.IntN(len(vs))], true
}

func (h *harness) step() {
	now := timestamppb.New(h.clock.Now())
	switch r := h.rng.IntN(100); {
	case r < 20 || len(h.orders) == 0:
		o := h.id("o")
		oc := &orderv1.OrderConfirmed{OrderId: o, BuyerId: "b", Payment: &orderv1.Payment{PspReference: "psp"}, ConfirmTime: now}
		var total int64
		for i, v := range h.rng.Perm(3)[:1+h.rng.IntN(3)] {
			vendor := fmt.Sprint("v", v)
			amt := []int64{1, 99, 101, 3333, 9999, 12345}[h.rng.IntN(6)]
			l := &orderv1.OrderLine{LineId: fmt.Sprint(i + 1), VendorId: vendor, LineTotal: eur(amt), Quantity: 1, UnitPrice: eur(amt)}
			if h.rng.IntN(2) == 0 {
				l.CreatorId, l.CommissionBps = fmt.Sprint("c", h.rng.IntN(2)), []int32{0, 333, 1000, 2500}[h.rng.IntN(4)]
			}
			oc.Lines = append(oc.Lines, l)
			oc.Parts = append(oc.Parts, &orderv1.VendorPart{VendorId: vendor, LineIds: []string{l.GetLineId()}, Subtotal: eur(amt)})
			h.parts[o] = append(h.parts[o], vendor)
			total += amt
		}
		oc.Total = eur(total)
		h.orders = append(h.orders, o)
		if h.rng.IntN(4) == 0 { // the order consumer lags: the confirmation is handled later
			h.pending = append(h.pending, h.emit("order", "order-"+o, oc))
			return
		}
		h.emitHandle("order", "order-"+o, oc)
	case r < 24 && len(h.pending) > 0:
		rec := h.pending[0]
		h.pending = h.pending[1:]
		if err := h.handle("order", rec); err != nil {
			h.t.Fatal(err)
		}
		h.handled = append(h.handled, handledEvent{"order", rec})
	case r < 38:
		if o, v, ok := h.randomPart(); ok {
			h.emitHandle("fulfilment", "fulfilment-"+o+v, &fulfilmentv1.FulfilmentDelivered{FulfilmentId: o + v, OrderId: o, VendorId: v, DeliverTime: now})
		}
	case r < 45:
		if o, v, ok := h.randomPart(); ok {
			c := h.id("cl")
			h.claims[c] = [2]string{o, v}
			h.emitHandle("trust", "claim-"+c, &trustv1.ClaimOpened{ClaimId: c, OrderId: o, VendorId: v, ClaimedAmount: eur(1), OpenTime: now})
		}
	case r < 52:
		for _, c := range slices.Sorted(maps.Keys(h.claims)) {
			at := h.claims[c]
			delete(h.claims, c)
			h.emitHandle("trust", "claim-"+c, &trustv1.ClaimClosed{ClaimId: c, OrderId: at[0], VendorId: at[1], Outcome: "rejected", CloseTime: now})
			break
		}
	case r < 64:
		if o, v, ok := h.randomPart(); ok {
			h.emitHandle("trust", "refunds-"+o, &trustv1.RefundIssued{RefundId: h.id("rf"), OrderId: o, VendorId: v,
				Amount: eur(1 + h.rng.Int64N(5000)), RefundTime: now})
		}
	case r < 67:
		if o, _, ok := h.randomPart(); ok {
			h.emitHandle("order", "order-"+o, &orderv1.OrderCancelled{OrderId: o, Reason: "test", CancelTime: now})
		}
	case r < 70:
		h.emit("trust", "vendortrust-all", &trustv1.TrustScoreChanged{VendorId: fmt.Sprint("v", h.rng.IntN(3)),
			Tier: []string{"gold", "silver", "standard", "watch"}[h.rng.IntN(4)], ChangeTime: now})
	case r < 84:
		h.advance(time.Duration(h.rng.IntN(10*24)) * time.Hour)
	case r < 92:
		h.runPayouts()
	default:
		h.replay()
	}
}

// advance moves the clock and closes every due window and reserve hold
// itself, racing the live scheduler.
func (h *harness) advance(d time.Duration) {
	h.clock.Advance(d)
	now := h.clock.Now()
	for _, o := range h.orders {
		st, err := h.svc.OrderSettlement(h.t.Context(), o)
		if err != nil {
			continue // not captured (yet)
		}
		for _, p := range st.Ledger.Parts {
			if p.Delivered && !p.WindowClosed && !p.CloseTime.After(now) {
				if err := h.svc.CloseWindow(h.t.Context(), o, p.VendorID); err != nil {
					h.t.Fatal(err)
				}
			}
		}
		st, _ = h.svc.OrderSettlement(h.t.Context(), o)
		for _, p := range st.Ledger.Parts {
			if p.Released && !p.ReserveReleased && p.Reserve.Minor > 0 && !p.ReserveReleaseTime.After(now) {
				if err := h.svc.ReleaseReserve(h.t.Context(), o, p.VendorID); err != nil {
					h.t.Fatal(err)
				}
			}
		}
	}
}

func (h *harness) runPayouts() {
	h.waitView(h.svc)
	before := h.fold()
	req := h.id("run")
	b, err := h.svc.RunPayouts(h.t.Context(), req, "platform")
	if err != nil {
		h.t.Fatal(err)
	}
	h.runs = append(h.runs, req)
	for _, l := range b.Lines {
		if had := before[l.Account][l.Amount.Currency]; had != l.Amount.Minor || had < h.policy.MinPayout.For(l.Amount.Currency) {
			h.t.Errorf("paid %s %s; it held %d", l.Account, l.Amount, had)
		}
	}
}

// replay hands a random handled event over again (a redelivery), or
// repeats a payout run: nothing may be written.
func (h *harness) replay() {
	pos := h.lastPosition()
	if len(h.runs) > 0 && h.rng.IntN(3) == 0 {
		req := h.runs[h.rng.IntN(len(h.runs))]
		b, err := h.svc.RunPayouts(h.t.Context(), req, "platform")
		if err != nil || b.RequestID != req {
			h.t.Fatalf("repeated run %s: %v, %v", req, b, err)
		}
	} else if len(h.handled) > 0 {
		ev := h.handled[h.rng.IntN(len(h.handled))]
		if err := h.handle(ev.svc, ev.rec); err != nil {
			h.t.Fatalf("redelivered %s: %v", ev.rec.Type, err)
		}
	}
	if got := h.lastPosition(); got != pos {
		h.t.Fatalf("a replay wrote events (%d -> %d)", pos, got)
	}
}

func (h *harness) lastPosition() uint64 {
	p, err := h.own.LastPosition(h.t.Context())
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// waitView waits until svc's read side has applied every event stored now.
func (h *harness) waitView(svc *app.Service) {
	target := h.lastPosition()
	if pos := svc.View().Position(); !pos.Reach(h.t.Context(), 10*time.Second, target) {
		h.t.Fatalf("read side at %d, store at %d", pos.Last(), target)
	}
}

// fold reads the whole store and folds its transactions, checking each.
func (h *harness) fold() domain.Balances {
	recs, err := h.own.ReadAll(h.t.Context(), 1, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	b := domain.Balances{}
	seen := map[string]bool{}
	for _, r := range recs {
		ev, err := es.Decode(r)
		if err != nil {
			h.t.Fatal(err)
		}
		tx, ok := ev.Payload.(*payoutsv1.TransactionPosted)
		if !ok {
			continue
		}
		if err := domain.CheckBalanced(tx); err != nil {
			h.t.Error(err)
		}
		if seen[tx.GetTransactionId()] {
			h.t.Errorf("transaction %s stored twice", tx.GetTransactionId())
		}
		seen[tx.GetTransactionId()] = true
		b.Apply(tx)
	}
	return b
}

func (h *harness) check() {
	h.waitView(h.svc)
	b := h.fold()
	if got := h.svc.View().Balances(); !equalBalances(got, b) {
		h.t.Fatalf("read side %v, store %v", got, b)
	}
	sums := map[string]int64{}
	for acct, byCur := range b {
		a, err := domain.ParseAccount(acct)
		if err != nil {
			h.t.Errorf("account %q: %v", acct, err)
		}
		for cur, m := range byCur {
			sums[cur] += m
			custody := a.Bucket == "escrow" || a.Bucket == "pending" || a.Bucket == "held" || a.Bucket == "reserve"
			if (custody || acct == domain.BuyerRefunds || acct == domain.PayoutsSent) && m < 0 {
				h.t.Errorf("%s is negative: %d %s", acct, m, cur)
			}
		}
	}
	for cur, s := range sums {
		if s != 0 { // money in = money out + balances
			h.t.Errorf("balances in %s sum to %d", cur, s)
		}
	}
}

func equalBalances(a, b domain.Balances) bool {
	nz := func(x domain.Balances) map[string]int64 {
		out := map[string]int64{}
		for acct, byCur := range x {
			for cur, m := range byCur {
				if m != 0 {
					out[acct+" "+cur] = m
				}
			}
		}
		return out
	}
	return maps.Equal(nz(a), nz(b))
}
