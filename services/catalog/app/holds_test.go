package app_test

import (
	"fmt"
	"testing"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/services/catalog/app"
	"github.com/custody/custody/services/catalog/domain"
)

// holdCount is how many holds product p keeps.
func (e *env) holdCount(t testing.TB, p string) int {
	t.Helper()
	pr, err := e.app.Product(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	return pr.HoldCount()
}

// Orders that finished leave no hold on the product, and are decided once
// all the same: their OrderPlaced again — redelivered, published again
// under another event id, on this App, on a second one over the same store
// (another instance, or this one restarted) — holds nothing, even once
// stock is back; their cancellation again releases nothing.
func TestSagaFencesFinishedOrders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.product(t, "r1", 5, 5)
	a := domain.SKUID(p, "a")

	// o1 reserved, then cancelled; o2 refused; o3 cancelled before it
	// arrived.
	o1 := e.order(t, "o1", "placed", placed("o1", line{a, 2}))
	e.handle(t, o1)
	cancel1 := e.order(t, "o1", "cancelled", cancelled("o1", "changed mind", p))
	e.handle(t, cancel1)
	o2 := e.order(t, "o2", "placed", placed("o2", line{a, 9}))
	e.handle(t, o2)
	e.handle(t, e.order(t, "o3", "cancelled", cancelled("o3", "fraud", p)))
	o3 := e.order(t, "o3", "placed", placed("o3", line{a, 1}))
	e.handle(t, o3)
	e.wantStock(t, "after o1, o2 and o3", a, [3]int64{5, 0, 0})
	if n := e.holdCount(t, p); n != 0 {
		t.Fatalf("the product keeps %d holds; every order finished", n)
	}
	answers := map[string]string{"o1": e.answer(t, "o1"), "o2": e.answer(t, "o2"), "o3": e.answer(t, "o3")}
	if answers["o1"] != tReserved || answers["o2"] != tFailed || answers["o3"] != "" {
		t.Fatalf("answers %v", answers)
	}

	// Stock comes back: holding again would now succeed.
	if _, err := e.app.AdjustStock(t.Context(), call("restock"), domain.AdjustStock{SkuID: a, Delta: 10}); err != nil {
		t.Fatal(err)
	}
	n := len(e.events(t, "product-"+p))
	second := app.NewSaga(app.New(e.p.AppDeps(t, "catalog"))).Routes()
	for _, rec := range []eventstore.RecordedEvent{
		o1, o2, o3, cancel1,
		e.order(t, "o1", "placed-again", placed("o1", line{a, 2})),
		e.order(t, "o2", "placed-again", placed("o2", line{a, 9})),
		e.order(t, "o3", "placed-again", placed("o3", line{a, 1})),
		e.order(t, "o1", "cancelled-again", cancelled("o1", "changed mind", p)),
	} {
		e.handle(t, rec)
		if err := second.Handle(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}
	e.wantStock(t, "after it all again", a, [3]int64{15, 0, 0})
	if got := e.events(t, "product-"+p); len(got) != n {
		t.Fatalf("the product recorded %v: something was decided twice", got[n:])
	}
	for order, want := range answers {
		if got := e.answer(t, order); got != want {
			t.Fatalf("answer to %s %q, was %q", order, got, want)
		}
	}
}

// A hot product sees many orders finish — cancelled after they were
// reserved, refused once stock is gone — and keeps a hold only for the
// orders that still hold stock (a count: before holds were pruned, it kept
// one per order).
func TestSagaHoldsStayBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const stock, orders = 20, 200
	p := e.product(t, "hot", stock, 0)
	a := domain.SKUID(p, "a")
	for i := range orders {
		id := fmt.Sprint("o", i)
		e.handle(t, e.order(t, id, "placed", placed(id, line{a, 1})))
		if i%2 == 0 {
			e.handle(t, e.order(t, id, "cancelled", cancelled(id, "changed mind", p)))
		}
	}
	// The odd orders hold the stock, the first of them; the rest finished.
	e.wantStock(t, "sku a", a, [3]int64{0, stock, 0})
	if n := e.holdCount(t, p); n != stock {
		t.Fatalf("the product keeps %d holds after %d orders, want %d: those still holding stock", n, orders, stock)
	}
}
