package app_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	"github.com/custody/custody/services/catalog/app"
	"github.com/custody/custody/services/catalog/domain"
)

const (
	tReserved  = "custody.catalog.v1.StockReserved"
	tFailed    = "custody.catalog.v1.StockReservationFailed"
	tRequested = "custody.catalog.v1.ReservationRequested"
	tCancelled = "custody.catalog.v1.ReservationCancelled"
	tReleased  = "custody.catalog.v1.StockReleased"
	tHeld      = "custody.catalog.v1.StockHeld"
	tHoldRel   = "custody.catalog.v1.StockHoldReleased"
)

func (e *env) reservation(t *testing.T, orderID string) domain.Reservation {
	t.Helper()
	r, err := e.app.Reservation(t.Context(), orderID)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// answer is the catalog's answer to an order: the type of the last
// StockReserved or StockReservationFailed about it, on any catalog stream
// ("" if none).
func (e *env) answer(t testing.TB, orderID string) string {
	t.Helper()
	recs, err := e.catalog.ReadAll(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	answer := ""
	for _, r := range recs {
		if r.Type != tReserved && r.Type != tFailed {
			continue
		}
		ev, err := es.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Payload.(interface{ GetOrderId() string }).GetOrderId() == orderID {
			answer = r.Type
		}
	}
	return answer
}

// An order of one product is held and answered by the product in one
// append: no reservation stream.
func TestSagaOneProductReservesInOneStep(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.product(t, "r1", 5, 2)
	a, b := domain.SKUID(p, "a"), domain.SKUID(p, "b")
	rec := e.order(t, "o1", "placed", placed("o1", line{a, 2}, line{b, 1}, line{a, 1}))

	// The handler runs twice on the same event (a redelivery after a lost
	// ack): the second run changes nothing.
	before := len(e.events(t, "product-"+p))
	for range 2 {
		e.handle(t, rec)
	}
	e.wantStock(t, "sku a", a, [3]int64{2, 3, 0})
	e.wantStock(t, "sku b", b, [3]int64{1, 1, 0})
	if got := e.events(t, "product-"+p)[before:]; !slices.Equal(got, []string{tHeld, tReserved}) {
		t.Fatalf("product events %v, want held and reserved", got)
	}
	if got := e.events(t, "reservation-o1"); got != nil {
		t.Fatalf("reservation events %v, want none", got)
	}
	// The outcome event is the public contract: lines and correlation.
	recs, _ := e.catalog.ReadStream(t.Context(), "product-"+p, uint64(before+1), 1)
	ev, _ := es.Decode(recs[0])
	r := ev.Payload.(*catalogv1.StockReserved)
	if r.GetOrderId() != "o1" || len(r.GetLines()) != 2 || !r.GetReserveTime().AsTime().Equal(t0) ||
		recs[0].Metadata.CorrelationID != "corr-o1" || recs[0].Metadata.Actor != app.Actor {
		t.Fatalf("StockReserved %v, metadata %+v", r, recs[0].Metadata)
	}

	// The same order published again under another event id (a producer
	// retry) is still reserved once.
	e.handle(t, e.order(t, "o1", "placed-again", placed("o1", line{a, 2}, line{b, 1}, line{a, 1})))
	e.wantStock(t, "after a re-published OrderPlaced: sku a", a, [3]int64{2, 3, 0})

	// Short: the product records the failure, naming the SKU, and holds
	// nothing; stock that comes back later does not resurrect it.
	short := e.order(t, "o2", "placed", placed("o2", line{a, 1}, line{b, 2}))
	e.handle(t, short)
	if got := e.answer(t, "o2"); got != tFailed {
		t.Fatalf("answer to o2: %q", got)
	}
	e.wantStock(t, "after o2: sku b", b, [3]int64{1, 1, 0})
	recs, _ = e.catalog.ReadStream(t.Context(), "product-"+p, uint64(before+2), 1)
	ev, _ = es.Decode(recs[0])
	if f, ok := ev.Payload.(*catalogv1.StockReservationFailed); !ok || f.GetSkuId() != b || f.GetRequested() != 2 || f.GetAvailable() != 1 {
		t.Fatalf("failure %v", ev.Payload)
	}
	if _, err := e.app.AdjustStock(t.Context(), call("restock"), domain.AdjustStock{SkuID: b, Delta: 10}); err != nil {
		t.Fatal(err)
	}
	e.handle(t, short)
	e.wantStock(t, "o2 redelivered after a restock: sku b", b, [3]int64{11, 1, 0})
}

// An order across products goes through the reservation saga.
func TestSagaReservesEveryLine(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p1, p2 := e.product(t, "r1", 5, 2), e.product(t, "r2", 5, 2)
	a, b := domain.SKUID(p1, "a"), domain.SKUID(p2, "b")
	rec := e.order(t, "o1", "placed", placed("o1", line{a, 2}, line{b, 1}, line{a, 1}))

	for range 2 {
		e.handle(t, rec)
	}
	if got := e.reservation(t, "o1").Status; got != domain.ReservationReserved {
		t.Fatalf("reservation %v", got)
	}
	e.wantStock(t, "sku a", a, [3]int64{2, 3, 0})
	e.wantStock(t, "sku b", b, [3]int64{1, 1, 0})
	if got := e.events(t, "reservation-o1"); !slices.Equal(got, []string{tRequested, tReserved}) {
		t.Fatalf("reservation events %v", got)
	}
	for _, p := range []string{p1, p2} {
		if got := e.events(t, "product-"+p); slices.Index(got, tHeld) != len(got)-1 {
			t.Fatalf("product events %v: want exactly one StockHeld, last", got)
		}
	}
	recs, _ := e.catalog.ReadStream(t.Context(), "reservation-o1", 1, 1)
	ev, _ := es.Decode(recs[0])
	r := ev.Payload.(*catalogv1.StockReserved)
	if r.GetOrderId() != "o1" || len(r.GetLines()) != 3 || recs[0].Metadata.CorrelationID != "corr-o1" {
		t.Fatalf("StockReserved %v, metadata %+v", r, recs[0].Metadata)
	}
	e.handle(t, e.order(t, "o1", "placed-again", placed("o1", line{a, 2}, line{b, 1}, line{a, 1})))
	e.wantStock(t, "after a re-published OrderPlaced: sku a", a, [3]int64{2, 3, 0})
}

func TestSagaAllOrNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Products are held in sorted order; the short one must come last, so
	// that the first one really is held and then released.
	p1, p2 := e.product(t, "r1", 5, 5), e.product(t, "r2", 5, 5)
	if p1 > p2 {
		p1, p2 = p2, p1
	}
	if _, err := e.app.AdjustStock(t.Context(), call("short"), domain.AdjustStock{SkuID: domain.SKUID(p2, "a"), Delta: -4}); err != nil {
		t.Fatal(err)
	}
	short := domain.SKUID(p2, "a") // 1 available
	rec := e.order(t, "o2", "placed", placed("o2", line{domain.SKUID(p1, "a"), 3}, line{domain.SKUID(p1, "b"), 1}, line{short, 2}))
	for range 2 {
		e.handle(t, rec)
	}
	if got := e.reservation(t, "o2"); got.Status != domain.ReservationFailed || got.FailedSKU != short {
		t.Fatalf("reservation %+v", got)
	}
	for _, sku := range []string{domain.SKUID(p1, "a"), domain.SKUID(p1, "b")} {
		if got := e.ledger(t, sku); got[1] != 0 || got[0] != 5 {
			t.Fatalf("%s = %v: the other product must be fully released", sku, got)
		}
	}
	if got := e.events(t, "product-"+p1); !slices.Contains(got, tHeld) || got[len(got)-1] != tHoldRel {
		t.Fatalf("first product events %v: want held then released", got)
	}
	recs, _ := e.catalog.ReadStream(t.Context(), "reservation-o2", 0, 0)
	ev, _ := es.Decode(recs[len(recs)-1])
	f, ok := ev.Payload.(*catalogv1.StockReservationFailed)
	if !ok || f.GetSkuId() != short || f.GetRequested() != 2 || f.GetAvailable() != 1 || f.GetReason() == "" {
		t.Fatalf("outcome %v", ev.Payload)
	}
	if len(recs) != 2 {
		t.Fatalf("reservation has %d events, want requested + failed", len(recs))
	}
	// Later restocking does not resurrect a failed reservation on redelivery.
	e.app.AdjustStock(t.Context(), call("restock"), domain.AdjustStock{SkuID: short, Delta: 10})
	e.handle(t, rec)
	if got := e.ledger(t, short); got[1] != 0 {
		t.Fatalf("short sku %v after redelivery", got)
	}
}

func TestSagaUnknownSKUFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.product(t, "r1", 5, 5)
	for i, lines := range [][]line{
		{{domain.SKUID(p, "a"), 1}, {domain.SKUID(p, "zz"), 1}},         // no such code
		{{domain.SKUID(p, "a"), 1}, {domain.SKUID("pnothere", "a"), 1}}, // no such product
		{{domain.SKUID(p, "a"), 1}, {"garbage", 1}},                     // not a SKU id
		{{domain.SKUID(p, "a"), 0}},                                     // nothing ordered
	} {
		order := fmt.Sprintf("u%d", i)
		e.handle(t, e.order(t, order, "placed", placed(order, lines...)))
		if got := e.answer(t, order); got != tFailed {
			t.Fatalf("%v: answer %q", lines, got)
		}
	}
	e.wantStock(t, "sku a", domain.SKUID(p, "a"), [3]int64{5, 0, 0})
}

func cancelled(orderID, reason string, products ...string) *orderv1.OrderCancelled {
	return &orderv1.OrderCancelled{OrderId: orderID, Reason: reason, CancelledBy: "buyer:b1", ProductIds: products}
}

func TestSagaCancelReleases(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p1, p2 := e.product(t, "r1", 5, 5), e.product(t, "r2", 5, 5)
	a, b := domain.SKUID(p1, "a"), domain.SKUID(p2, "a")

	// One product.
	e.handle(t, e.order(t, "o3", "placed", placed("o3", line{a, 4})))
	e.wantStock(t, "reserved", a, [3]int64{1, 4, 0})
	cancel := e.order(t, "o3", "cancelled", cancelled("o3", "changed mind", p1))
	for range 2 {
		e.handle(t, cancel)
	}
	e.wantStock(t, "after cancel", a, [3]int64{5, 0, 0})
	if got := e.events(t, "product-"+p1); got[len(got)-1] != tHoldRel || e.events(t, "reservation-o3") != nil {
		t.Fatalf("product events %v, reservation %v", got, e.events(t, "reservation-o3"))
	}

	// Across products.
	e.handle(t, e.order(t, "o4", "placed", placed("o4", line{a, 1}, line{b, 2})))
	e.wantStock(t, "reserved", b, [3]int64{3, 2, 0})
	cancel = e.order(t, "o4", "cancelled", cancelled("o4", "changed mind", p1, p2))
	for range 2 {
		e.handle(t, cancel)
	}
	e.wantStock(t, "after cancel: a", a, [3]int64{5, 0, 0})
	e.wantStock(t, "after cancel: b", b, [3]int64{5, 0, 0})
	if got := e.events(t, "reservation-o4"); !slices.Equal(got, []string{tRequested, tReserved, tReleased}) {
		t.Fatalf("reservation events %v", got)
	}

	// A rejection is not the saga's business: the failure released all.
	e.handle(t, e.order(t, "o5", "placed", placed("o5", line{a, 99})))
	n := len(e.events(t, "product-"+p1))
	e.handle(t, e.order(t, "o5", "rejected", &orderv1.OrderRejected{OrderId: "o5", Reason: "out of stock", SkuId: a}))
	if got := e.events(t, "product-"+p1); len(got) != n || got[n-1] != tFailed {
		t.Fatalf("product events %v", got)
	}
}

func TestSagaCancelBeforePlace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p1, p2 := e.product(t, "r1", 5, 5), e.product(t, "r2", 5, 5)
	a, b := domain.SKUID(p1, "a"), domain.SKUID(p2, "a")

	// One product: the cancellation leaves a tombstone there.
	before := e.events(t, "product-"+p1)
	e.handle(t, e.order(t, "o5", "cancelled", cancelled("o5", "fraud", p1)))
	e.handle(t, e.order(t, "o5", "placed", placed("o5", line{a, 1})))
	e.wantStock(t, "sku a", a, [3]int64{5, 0, 0})
	if got := e.events(t, "product-"+p1); !slices.Equal(got, append(before, tHoldRel)) || e.answer(t, "o5") != "" {
		t.Fatalf("product events %v, answer %q", got, e.answer(t, "o5"))
	}

	// Across products: the reservation is cancelled before it starts.
	before = e.events(t, "product-"+p2)
	e.handle(t, e.order(t, "o6", "cancelled", cancelled("o6", "fraud", p1, p2)))
	e.handle(t, e.order(t, "o6", "placed", placed("o6", line{a, 1}, line{b, 1})))
	e.wantStock(t, "sku b", b, [3]int64{5, 0, 0})
	if got := e.events(t, "reservation-o6"); !slices.Equal(got, []string{tCancelled}) {
		t.Fatalf("reservation events %v", got)
	}
	if got := e.events(t, "product-"+p2); !slices.Equal(got, before) {
		t.Fatalf("product changed: %v", got)
	}
}

// A cancellation that lands while the saga is half-way (another instance
// holding stock): the held product is released, the product the saga has
// not reached yet refuses it afterwards, and the reservation stays
// cancelled.
func TestSagaCancelWhileHolding(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p1 := e.product(t, "r1", 5, 5)
	p2 := e.product(t, "r2", 5, 5)
	lines := []line{{domain.SKUID(p1, "a"), 1}, {domain.SKUID(p2, "a"), 1}}
	rec := e.order(t, "o6", "placed", placed("o6", lines...))
	ctx := t.Context()
	// The first steps of the saga, as an instance that then stalls would do.
	dl := []domain.Line{{SkuID: lines[0].sku, Quantity: 1}, {SkuID: lines[1].sku, Quantity: 1}}
	first := min(p1, p2)
	if _, err := e.app.Reservations.Handle(ctx, es.Command[domain.ReservationCommand]{AggregateID: "o6", ID: es.DeriveID(rec.ID, "request"), Body: domain.RequestReservation{Lines: dl}}); err != nil {
		t.Fatal(err)
	}
	hold := func(p string) es.Result[domain.Product] {
		t.Helper()
		res, err := e.app.Products.Handle(ctx, es.Command[domain.ProductCommand]{AggregateID: p, ID: domain.DecisionID(p, "o6"),
			Body: domain.HoldStock{OrderID: "o6", Lines: []domain.Line{{SkuID: domain.SKUID(p, "a"), Quantity: 1}}}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	hold(first)
	if err := e.saga.Handle(ctx, e.order(t, "o6", "cancelled", cancelled("o6", "fraud", p1, p2))); err != nil {
		t.Fatal(err)
	}
	// The stalled instance goes on to hold the next product: the
	// cancellation fenced it off there, under the order's decision id, so
	// that is a repeat and holds nothing.
	if res := hold(max(p1, p2)); !res.Duplicate || len(res.Events) != 0 {
		t.Fatalf("the hold after the cancellation: duplicate %v, events %v", res.Duplicate, res.Events)
	}
	// Or it resumes from the start (or the event is redelivered).
	if err := e.saga.Handle(ctx, rec); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{p1, p2} {
		e.wantStock(t, "product "+p+" sku a", domain.SKUID(p, "a"), [3]int64{5, 0, 0})
		pr, _ := e.app.Product(ctx, p)
		if pr.HoldFor("o6").Status != domain.HoldNone || pr.HoldCount() != 0 {
			t.Fatalf("product %s keeps %d holds, o6's %v: the order finished", p, pr.HoldCount(), pr.HoldFor("o6").Status)
		}
	}
	if got := e.reservation(t, "o6").Status; got != domain.ReservationCancelled {
		t.Fatalf("reservation %v", got)
	}
}

func TestSagaParksBadOrderIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := e.order(t, "o8", "placed", placed("not a valid id!"))
	if err := e.saga.Handle(t.Context(), rec); !fault.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent", err)
	}
	// Events of other types are not the saga's business.
	other := e.order(t, "o8", "confirmed", &orderv1.OrderConfirmed{OrderId: "o8"})
	e.handle(t, other)
}

// BenchmarkSagaHotProduct: orders for one product (the one pinned in a
// livestream) handled one after the other, as the durable consumer hands
// them over; nine in ten are refused once stock runs out. Each order costs
// one append on the product: held and reserved, or failed.
func BenchmarkSagaHotProduct(b *testing.B) {
	e := newEnv(b)
	p := e.product(b, "hot", int64(b.N/10+1), 0)
	sku := domain.SKUID(p, "a")
	recs := make([]eventstore.RecordedEvent, b.N)
	for i := range recs {
		id := fmt.Sprintf("o%d", i)
		recs[i] = e.order(b, id, "placed", placed(id, line{sku, 1}))
	}
	b.ResetTimer()
	for i := range b.N {
		if err := e.saga.Handle(b.Context(), recs[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if got := e.ledger(b, sku); got[0] != 0 {
		b.Fatalf("ledger %v: stock left", got)
	}
}

// Many orders for the last units at once, each handled on its own
// goroutine as the runtime's lanes do: the product holds exactly what it
// has and refuses the rest. (The end-to-end flash sale rarely gets here
// any more: the order service refuses at once what its orders already
// claim.)
func TestSagaNeverOversellsUnderContention(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.product(t, "r1", 10, 0)
	a := domain.SKUID(p, "a")
	const orders = 60
	recs := make([]eventstore.RecordedEvent, orders)
	for i := range recs {
		id := fmt.Sprint("o", i)
		recs[i] = e.order(t, id, "placed", placed(id, line{a, 1}))
	}
	var wg sync.WaitGroup
	for _, rec := range recs {
		wg.Go(func() {
			if err := e.saga.Handle(t.Context(), rec); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	answers := map[string]int{}
	for i := range orders {
		answers[e.answer(t, fmt.Sprint("o", i))]++
	}
	if answers[tReserved] != 10 || answers[tFailed] != orders-10 {
		t.Fatalf("answers %v, want 10 reserved and %d failed", answers, orders-10)
	}
	e.wantStock(t, "sku a", a, [3]int64{0, 10, 0})
}
