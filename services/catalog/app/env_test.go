package app_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/money"
	"github.com/custody/custody/pkg/natsembed"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	"github.com/custody/custody/services/catalog/app"
	"github.com/custody/custody/services/catalog/domain"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// env is one embedded JetStream server holding the catalog's store (run by
// an App) and the order service's store (written by the test, as the order
// service would).
type env struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	catalog *esjs.Store
	orders  *esjs.Store
	clock   *clock.Fake
	app     *app.App
	saga    *app.Saga
}

func newEnv(t testing.TB) *env {
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
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{nc: nc, js: js, clock: clock.NewFake(t0)}
	if e.catalog, err = esjs.Open(t.Context(), nc, esjs.Config{Service: "catalog", Now: e.clock.Now}); err != nil {
		t.Fatal(err)
	}
	if e.orders, err = esjs.Open(t.Context(), nc, esjs.Config{Service: "order", Now: e.clock.Now}); err != nil {
		t.Fatal(err)
	}
	e.app = app.New(e.catalog, e.clock, quiet())
	if err := e.app.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.app.Stop)
	e.saga = app.NewSaga(e.app)
	return e
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func call(id string) app.Call { return app.Call{ID: id, Meta: es.Meta{Actor: "platform"}} }

// product creates a product of vendor v1 with SKUs "a" and "b" of the
// given stock and returns its id.
func (e *env) product(t testing.TB, requestID string, stockA, stockB int64) string {
	t.Helper()
	ctx := t.Context()
	if _, err := e.app.RegisterVendor(ctx, call("reg-v1"), domain.RegisterVendor{VendorID: "v1", DisplayName: "Acme", CountryCode: "DE"}); err != nil {
		t.Fatal(err)
	}
	id := domain.ProductID("v1", requestID)
	_, err := e.app.CreateProduct(ctx, call("create-"+requestID), domain.CreateProduct{
		ProductID: id, VendorID: "v1", Title: "Tee " + requestID, CommissionBps: 1000,
		SKUs: []domain.SKUSpec{
			{Code: "a", Price: money.MustNew("EUR", 1000), InitialStock: stockA},
			{Code: "b", Price: money.MustNew("EUR", 1500), InitialStock: stockB},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// publish appends an order event as the order service would and returns
// it as stored (what the bus hands the saga).
func (e *env) publish(t testing.TB, orderID, kind string, m proto.Message) eventstore.RecordedEvent {
	t.Helper()
	ed, err := es.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	ed.ID = es.DeriveID("order", orderID, kind)
	ed.Metadata = eventstore.Metadata{CorrelationID: "corr-" + orderID, CausationID: "test", Actor: "service:order"}
	res, err := e.orders.Append(t.Context(), "order-"+orderID, eventstore.Any, []eventstore.EventData{ed})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := e.orders.ReadStream(t.Context(), "order-"+orderID, res.LastRevision, 1)
	if err != nil || len(recs) != 1 {
		t.Fatalf("read back %s: %v", kind, err)
	}
	return recs[0]
}

type line struct {
	sku string
	qty int64
}

func placed(orderID string, lines ...line) *orderv1.OrderPlaced {
	ev := &orderv1.OrderPlaced{OrderId: orderID, BuyerId: "b1", PlaceTime: timestamppb.New(t0)}
	for i, l := range lines {
		p, _ := domain.ProductOfSKU(l.sku)
		ev.Lines = append(ev.Lines, &orderv1.OrderLine{LineId: string(rune('1' + i)), SkuId: l.sku, ProductId: p, VendorId: "v1", Quantity: l.qty})
	}
	return ev
}

// ledger returns a SKU's available, reserved and sold.
func (e *env) ledger(t testing.TB, skuID string) [3]int64 {
	t.Helper()
	p, err := e.app.ProductOfSKU(t.Context(), skuID)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := p.SKU(skuID)
	return [3]int64{k.Available, k.Reserved, k.Sold}
}

// events returns the types of a catalog stream's events.
func (e *env) events(t testing.TB, stream string) []string {
	t.Helper()
	recs, err := e.catalog.ReadStream(t.Context(), stream, 0, 0)
	if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.Type)
	}
	return out
}

// eventually retries check until it passes or the deadline passes.
func eventually(t testing.TB, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var _ = context.Background
