package app_test

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/money"
	"github.com/custody/custody/pkg/platform/platformtest"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/order/app"
	"github.com/custody/custody/services/order/domain"
)

// These tests hand the saga reaction its events directly, as the
// platform's runtime would deliver them (again, after a lost ack or a
// restart), on real JetStream stores: a platform that runs no module, the
// test being the order service. They show that the reaction is idempotent
// under redelivery and restart.

type env struct {
	p     *platformtest.Platform
	clock *clock.Fake
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clk := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	return &env{p: platformtest.Start(t, platformtest.Options{Clock: clk}), clock: clk}
}

// service is a fresh service (a fresh process, as far as caches go). No
// runtime folds its catalog view: the test applies what it emits
// (placeOrder), so the view counts as caught up from the start.
func (e *env) service(t *testing.T) *app.Service {
	t.Helper()
	svc := app.New(app.Config{}, e.p.AppDeps(t, "order"))
	svc.CatalogView().Position().MarkReady()
	orders, _ := newSpace(t, t.TempDir()) // a new process's read model: empty
	if err := svc.Orders().Attach(orders); err != nil {
		t.Fatal(err)
	}
	return svc
}

func (e *env) emit(t *testing.T, stream string, m proto.Message) eventstore.RecordedEvent {
	t.Helper()
	return e.p.Emit(t, "catalog", stream, m)[0]
}

func (e *env) events(t *testing.T, orderID string) []proto.Message {
	t.Helper()
	return e.p.Events(t, "order", "order-"+orderID)
}

func (e *env) placeOrder(t *testing.T, svc *app.Service) string {
	t.Helper()
	svc.CatalogView().Apply(e.emit(t, "product-p1", &catalogv1.ProductCreated{ProductId: "p1", VendorId: "v1", Skus: []*catalogv1.SkuCreated{
		{SkuId: "p1-a", Code: "a", Price: &typev1.Money{CurrencyCode: "EUR", AmountMinor: 250}},
	}}))
	v, err := svc.PlaceOrder(t.Context(), app.PlaceOrder{
		RequestID: "r1", BuyerID: "b1", Lines: []domain.LineRequest{{SKUID: "p1-a", Quantity: 4}},
		Address: &typev1.Address{RecipientName: "A", AddressLines: []string{"x"}, Locality: "y", CountryCode: "DE"},
		Payment: domain.Payment{PSPReference: "psp", Amount: money.MustNew("EUR", 1000)}, Actor: "buyer:b1",
	})
	if err != nil {
		t.Fatal(err)
	}
	return v.Order.ID
}

func TestConfirmReactionIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	svc := e.service(t)
	id := e.placeOrder(t, svc)
	reserved := e.emit(t, "reservation-"+id, &catalogv1.StockReserved{OrderId: id, ReserveTime: timestamppb.Now()})

	// The same event handled twice (a redelivery after a lost ack).
	for range 2 {
		if err := svc.CatalogRoutes().Handle(t.Context(), reserved); err != nil {
			t.Fatal(err)
		}
	}
	evs := e.events(t, id)
	if len(evs) != 2 {
		t.Fatalf("%d events, want OrderPlaced and one OrderConfirmed", len(evs))
	}
	if _, ok := evs[1].(*orderv1.OrderConfirmed); !ok {
		t.Fatalf("second event %T", evs[1])
	}

	// After a restart (nothing cached), the same event again, and a
	// contradicting late answer: still nothing new.
	svc2 := e.service(t)
	if err := svc2.CatalogRoutes().Handle(t.Context(), reserved); err != nil {
		t.Fatal(err)
	}
	failed := e.emit(t, "reservation-"+id, &catalogv1.StockReservationFailed{OrderId: id, SkuId: "p1-a"})
	if err := svc2.CatalogRoutes().Handle(t.Context(), failed); err != nil {
		t.Fatal(err)
	}
	if n := len(e.events(t, id)); n != 2 {
		t.Fatalf("%d events after restart, want 2", n)
	}
	got, err := svc2.GetOrder(t.Context(), id)
	if err != nil || got.Order.Status != domain.StatusConfirmed || got.Revision != 1 {
		t.Fatalf("order %+v, %v", got, err)
	}
}

func TestRejectReactionRecordsTheReason(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	svc := e.service(t)
	id := e.placeOrder(t, svc)
	failed := e.emit(t, "reservation-"+id, &catalogv1.StockReservationFailed{OrderId: id, SkuId: "p1-a", Requested: 4, Available: 1})
	for range 2 {
		if err := svc.CatalogRoutes().Handle(t.Context(), failed); err != nil {
			t.Fatal(err)
		}
	}
	evs := e.events(t, id)
	rej, ok := evs[len(evs)-1].(*orderv1.OrderRejected)
	if len(evs) != 2 || !ok || rej.GetSkuId() != "p1-a" || rej.GetReason() != "sku p1-a: 4 requested, 1 available" {
		t.Fatalf("events %v", evs)
	}
}

func TestReactionToAnUnknownOrderIsParked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	svc := e.service(t)
	rec := e.emit(t, "reservation-o404", &catalogv1.StockReserved{OrderId: "o404"})
	if err := svc.CatalogRoutes().Handle(t.Context(), rec); !fault.IsPermanent(err) || !errors.Is(err, domain.ErrNotPlaced) {
		t.Fatalf("err = %v, want a permanent ErrNotPlaced", err)
	}
	rec = e.emit(t, "reservation-bad", &catalogv1.StockReserved{OrderId: "not an id!"})
	if err := svc.CatalogRoutes().Handle(t.Context(), rec); !fault.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent", err)
	}
}
