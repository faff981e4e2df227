package app_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/money"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/order/app"
	"github.com/custody/custody/services/order/domain"
)

// stockEnv is a service whose catalog view knows one SKU, p1-a, with two
// units. No catalog runs: orders stay PENDING, so their claims stand until
// the test answers them.
type stockEnv struct {
	*env
	svc *app.Service
}

func newStockEnv(t *testing.T) stockEnv {
	t.Helper()
	e := newEnv(t)
	svc := e.service(t)
	svc.CatalogView().Apply(e.emit(t, "product-p1", &catalogv1.ProductCreated{ProductId: "p1", VendorId: "v1", Skus: []*catalogv1.SkuCreated{
		{SkuId: "p1-a", Code: "a", Price: &typev1.Money{CurrencyCode: "EUR", AmountMinor: 100}, InitialStock: 2},
	}}))
	return stockEnv{env: e, svc: svc}
}

// place places an order of n units of p1-a by buyer; its error is the
// gate's answer.
func (s stockEnv) place(t *testing.T, buyer string, n int64) (string, error) {
	t.Helper()
	v, err := s.svc.PlaceOrder(t.Context(), app.PlaceOrder{
		RequestID: "r", BuyerID: buyer, Lines: []domain.LineRequest{{SKUID: "p1-a", Quantity: n}},
		Address: &typev1.Address{RecipientName: "A", AddressLines: []string{"x"}, Locality: "y", CountryCode: "DE"},
		Payment: domain.Payment{PSPReference: "psp-" + buyer, Amount: money.MustNew("EUR", 100*n)}, Actor: "buyer:" + buyer,
	})
	return v.Order.ID, err
}

// refused checks that err is the gate's refusal saying want, and that
// nothing of the order was stored.
func (s stockEnv) refused(t *testing.T, buyer string, err error, want string) {
	t.Helper()
	var pe *fault.PreconditionError
	if !errors.As(err, &pe) || pe.Reason != domain.ReasonOutOfStock || !strings.Contains(pe.Message, want) {
		t.Fatalf("%s: err = %v, want OUT_OF_STOCK saying %q", buyer, err, want)
	}
	if evs := s.events(t, domain.OrderID(buyer, "r")); len(evs) != 0 {
		t.Fatalf("%s: a refused order stored %d events", buyer, len(evs))
	}
}

// Orders being reserved claim their units: once they claim every unit the
// SKU has, the next order is refused at once; one order alone never is.
func TestOrdersBeyondTheClaimedStockAreRefusedAtOnce(t *testing.T) {
	t.Parallel()
	s := newStockEnv(t)
	for _, b := range []string{"a", "b"} {
		if _, err := s.place(t, b, 1); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	}
	_, err := s.place(t, "c", 1)
	s.refused(t, "c", err, "but orders being reserved or confirmed already take its 2 unit(s)")

	// A repeat of a claimed order is no new claim: it is answered.
	if _, err := s.place(t, "a", 1); err != nil {
		t.Fatalf("repeat: %v", err)
	}
	// Another process has claimed nothing: an order for more than the SKU
	// ever had goes to the catalog, which decides.
	other := newStockEnv(t)
	if _, err := other.place(t, "big", 3); err != nil {
		t.Fatalf("an order alone: %v", err)
	}
}

// A rejected order lets its claim go; a confirmed one keeps it (its units
// are held); units coming back start a new count.
func TestClaimsFollowTheOrdersOutcome(t *testing.T) {
	t.Parallel()
	s := newStockEnv(t)
	a, err := s.place(t, "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.place(t, "b", 1)
	if err != nil {
		t.Fatal(err)
	}
	s.answer(t, a, &catalogv1.StockReserved{OrderId: a})
	s.answer(t, b, &catalogv1.StockReservationFailed{OrderId: b, SkuId: "p1-a", Requested: 1, Available: 0, Reason: "saga"})
	if _, err := s.place(t, "c", 1); err != nil {
		t.Fatalf("after b was rejected: %v", err)
	}
	_, err = s.place(t, "d", 1)
	s.refused(t, "d", err, "already take its 2 unit(s)")

	// Units of the product came back (a's hold released): the claims made
	// before count no more.
	s.svc.CatalogView().Apply(s.emit(t, "product-p1", &catalogv1.StockHoldReleased{ProductId: "p1", OrderId: a,
		Lines: []*catalogv1.StockLine{{SkuId: "p1-a", Quantity: 1}}}))
	if _, err := s.place(t, "e", 1); err != nil {
		t.Fatalf("after units came back: %v", err)
	}
}

// The catalog's refusal on the product's stream bounds what PlaceOrder
// accepts until units come back; a refusal for another reason (the saga's
// reservation stream) bounds nothing.
func TestTheCatalogsRefusalBoundsOrders(t *testing.T) {
	t.Parallel()
	s := newStockEnv(t)
	s.svc.CatalogView().Apply(s.emit(t, "reservation-x", &catalogv1.StockReservationFailed{OrderId: "x", SkuId: "p1-a", Requested: 1, Available: 0}))
	if _, err := s.place(t, "a", 2); err != nil {
		t.Fatalf("after the saga's refusal: %v", err)
	}
	s.svc.CatalogView().Apply(s.emit(t, "product-p1", &catalogv1.StockReservationFailed{OrderId: "y", SkuId: "p1-a", Requested: 2, Available: 1}))
	for i, tc := range []struct {
		units int64
		err   string
	}{
		{2, "sku p1-a: 2 requested, at most 1 available"},
		{1, ""},
	} {
		buyer := fmt.Sprint("bound-", i)
		_, err := s.place(t, buyer, tc.units)
		if tc.err == "" {
			if err != nil {
				t.Fatalf("%d units: %v", tc.units, err)
			}
			continue
		}
		s.refused(t, buyer, err, tc.err)
	}
	s.svc.CatalogView().Apply(s.emit(t, "product-p1", &catalogv1.StockAdjusted{ProductId: "p1", SkuId: "p1-a", Delta: 5}))
	if _, err := s.place(t, "after-restock", 2); err != nil {
		t.Fatalf("after a restock: %v", err)
	}
}

// answer hands the service the catalog's answer for order id, and its read
// model the order's events, as the platform's runtime would.
func (s stockEnv) answer(t *testing.T, id string, answer proto.Message) {
	t.Helper()
	if err := s.svc.CatalogRoutes().Handle(t.Context(), s.emit(t, "reservation-"+id, answer)); err != nil {
		t.Fatal(err)
	}
	recs, err := s.p.Store(t, "order").ReadStream(t.Context(), "order-"+id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		s.svc.Orders().Apply(r)
	}
}

// A retry of an order placed earlier is answered with that order even when
// its SKU has sold out since, in a process that never saw it placed.
func TestARetryIsAnsweredAfterASellOut(t *testing.T) {
	t.Parallel()
	s := newStockEnv(t)
	id, err := s.place(t, "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	restarted := stockEnv{env: s.env, svc: s.service(t)}
	catalog, err := s.p.Store(t, "catalog").ReadAll(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range catalog {
		restarted.svc.CatalogView().Apply(e)
	}
	restarted.svc.CatalogView().Apply(s.emit(t, "product-p1", &catalogv1.StockReservationFailed{OrderId: "z", SkuId: "p1-a", Requested: 1, Available: 0}))
	if _, err := restarted.place(t, "new", 1); err == nil {
		t.Fatal("a new order after the sell-out was accepted")
	}
	got, err := restarted.place(t, "a", 1)
	if err != nil || got != id {
		t.Fatalf("retry: order %q, %v; want %q", got, err, id)
	}
}
