package app_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/bus"
	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/money"
	"github.com/custody/custody/pkg/natsembed"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/order/app"
	"github.com/custody/custody/services/order/domain"
)

// These tests drive the saga reaction directly (no bus), on real JetStream
// stores, to show that it is idempotent under redelivery and restart.

type env struct {
	catalog *esjs.Store
	orders  *esjs.Store
	clock   *clock.Fake
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	e := &env{clock: clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))}
	if e.catalog, err = esjs.Open(t.Context(), nc, esjs.Config{Service: "catalog"}); err != nil {
		t.Fatal(err)
	}
	if e.orders, err = esjs.Open(t.Context(), nc, esjs.Config{Service: "order"}); err != nil {
		t.Fatal(err)
	}
	return e
}

// service starts a fresh service (a fresh process, as far as caches go).
func (e *env) service(t *testing.T) *app.Service {
	t.Helper()
	svc := app.New(app.Config{}, app.Deps{
		Store:       e.orders,
		OpenCatalog: func(context.Context) (app.Store, error) { return e.catalog, nil },
		Clock:       e.clock,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	return svc
}

func (e *env) emit(t *testing.T, stream, id string, m proto.Message) eventstore.RecordedEvent {
	t.Helper()
	ed, err := es.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	ed.ID = id
	res, err := e.catalog.Append(t.Context(), stream, eventstore.Any, []eventstore.EventData{ed})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := e.catalog.ReadStream(t.Context(), stream, res.LastRevision, 1)
	if err != nil {
		t.Fatal(err)
	}
	return recs[0]
}

func (e *env) events(t *testing.T, orderID string) []proto.Message {
	t.Helper()
	recs, err := e.orders.ReadStream(t.Context(), "order-"+orderID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []proto.Message
	for _, r := range recs {
		ev, err := es.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev.Payload)
	}
	return out
}

func (e *env) placeOrder(t *testing.T, svc *app.Service) string {
	t.Helper()
	e.emit(t, "product-p1", "ev-p1", &catalogv1.ProductCreated{ProductId: "p1", VendorId: "v1", Skus: []*catalogv1.SkuCreated{
		{SkuId: "p1-a", Code: "a", Price: &typev1.Money{CurrencyCode: "EUR", AmountMinor: 250}},
	}})
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
	e := newEnv(t)
	svc := e.service(t)
	id := e.placeOrder(t, svc)
	reserved := e.emit(t, "reservation-"+id, "ev-reserved", &catalogv1.StockReserved{OrderId: id, ReserveTime: timestamppb.Now()})

	// The same event handled twice (a redelivery after a lost ack).
	for range 2 {
		if err := svc.HandleCatalogEvent(t.Context(), reserved); err != nil {
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
	if err := svc2.HandleCatalogEvent(t.Context(), reserved); err != nil {
		t.Fatal(err)
	}
	failed := e.emit(t, "reservation-"+id, "ev-failed", &catalogv1.StockReservationFailed{OrderId: id, SkuId: "p1-a"})
	if err := svc2.HandleCatalogEvent(t.Context(), failed); err != nil {
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
	e := newEnv(t)
	svc := e.service(t)
	id := e.placeOrder(t, svc)
	failed := e.emit(t, "reservation-"+id, "ev-failed", &catalogv1.StockReservationFailed{OrderId: id, SkuId: "p1-a", Requested: 4, Available: 1})
	for range 2 {
		if err := svc.HandleCatalogEvent(t.Context(), failed); err != nil {
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
	e := newEnv(t)
	svc := e.service(t)
	rec := e.emit(t, "reservation-o404", "ev-x", &catalogv1.StockReserved{OrderId: "o404"})
	if err := svc.HandleCatalogEvent(t.Context(), rec); !bus.IsPermanent(err) || !errors.Is(err, domain.ErrNotPlaced) {
		t.Fatalf("err = %v, want a permanent ErrNotPlaced", err)
	}
	rec = e.emit(t, "reservation-bad", "ev-y", &catalogv1.StockReserved{OrderId: "not an id!"})
	if err := svc.HandleCatalogEvent(t.Context(), rec); !bus.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent", err)
	}
}

// A product created just before the order is priced: PlaceOrder catches
// the view up with the catalog's stream before calling a SKU unknown.
func TestPlaceOrderReadsTheCatalogsWrites(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	if err := svc.CatalogView().WaitReady(t.Context(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		pid := "q" + string(rune('a'+i))
		e.emit(t, "product-"+pid, "ev-"+pid, &catalogv1.ProductCreated{ProductId: pid, VendorId: "v1", Skus: []*catalogv1.SkuCreated{
			{Code: "x", Price: &typev1.Money{CurrencyCode: "EUR", AmountMinor: 100}},
		}})
		_, err := svc.PlaceOrder(t.Context(), app.PlaceOrder{
			RequestID: pid, BuyerID: "b1", Lines: []domain.LineRequest{{SKUID: pid + "-x", Quantity: 1}},
			Address: &typev1.Address{RecipientName: "A", AddressLines: []string{"x"}, Locality: "y", CountryCode: "DE"},
			Payment: domain.Payment{PSPReference: "psp", Amount: money.MustNew("EUR", 100)},
		})
		if err != nil {
			t.Fatalf("order right after ProductCreated %d: %v", i, err)
		}
	}
}
