package app_test

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/money"
	"github.com/custody/custody/pkg/platform/platformtest"
	"github.com/custody/custody/pkg/projection"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	"github.com/custody/custody/services/catalog/app"
	"github.com/custody/custody/services/catalog/domain"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// env is an App on the catalog's store in a platform that runs no module:
// the test hands events to the App's handlers itself, as the runtime would,
// after writing them into the other services' stores as those would.
type env struct {
	p       *platformtest.Platform
	catalog *esjs.Store
	app     *app.App
	saga    projection.Routes
}

func newEnv(t testing.TB) *env {
	t.Helper()
	clk := clock.NewFake(t0)
	p := platformtest.Start(t, platformtest.Options{Clock: clk})
	e := &env{p: p, catalog: p.Store(t, "catalog")}
	e.app = app.New(p.AppDeps(t, "catalog"))
	e.saga = app.NewSaga(e.app).Routes()
	return e
}

func call(id string) app.Call { return app.Call{ID: id, Meta: es.Meta{Actor: "platform"}} }

// product creates a product of vendor v1 with SKUs "a" and "b" of the
// given stock and returns its id.
func (e *env) product(t testing.TB, requestID string, stockA, stockB int64) string {
	t.Helper()
	return e.productOf(t, "v1", requestID, stockA, stockB)
}

// productOf is product for another vendor (registered on first use).
func (e *env) productOf(t testing.TB, vendorID, requestID string, stockA, stockB int64) string {
	t.Helper()
	ctx := t.Context()
	if _, err := e.app.RegisterVendor(ctx, call("reg-"+vendorID), domain.RegisterVendor{VendorID: vendorID, DisplayName: "Acme", CountryCode: "DE"}); err != nil {
		t.Fatal(err)
	}
	id := domain.ProductID(vendorID, requestID)
	_, err := e.app.CreateProduct(ctx, call("create-"+vendorID+"-"+requestID), domain.CreateProduct{
		ProductID: id, VendorID: vendorID, Title: "Tee " + requestID, CommissionBps: 1000,
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

// publish appends an event of service to stream, about orderID, as that
// service would (correlated by "corr-<order id>", with an event id derived
// from stream and kind), and returns it as stored: what the runtime hands a
// handler.
func (e *env) publish(t testing.TB, service, stream, orderID, kind string, m proto.Message) eventstore.RecordedEvent {
	t.Helper()
	ed, err := es.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	ed.ID = es.DeriveID(service, stream, kind)
	ed.Metadata = eventstore.Metadata{CorrelationID: "corr-" + orderID, CausationID: "test", Actor: "service:" + service}
	st := e.p.Store(t, service)
	res, err := st.Append(t.Context(), stream, eventstore.Any, []eventstore.EventData{ed})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := st.ReadStream(t.Context(), stream, res.LastRevision, 1)
	if err != nil || len(recs) != 1 {
		t.Fatalf("read back %s: %v", kind, err)
	}
	return recs[0]
}

// handle hands rec to the saga, as the runtime delivers it, and fails t
// if the saga fails.
func (e *env) handle(t testing.TB, rec eventstore.RecordedEvent) {
	t.Helper()
	if err := e.saga.Handle(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
}

// order publishes an event of order orderID, as the order service would.
func (e *env) order(t testing.TB, orderID, kind string, m proto.Message) eventstore.RecordedEvent {
	t.Helper()
	return e.publish(t, "order", "order-"+orderID, orderID, kind, m)
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

// wantStock fails t unless skuID's available, reserved and sold are want;
// what names the check.
func (e *env) wantStock(t testing.TB, what, skuID string, want [3]int64) {
	t.Helper()
	if got := e.ledger(t, skuID); got != want {
		t.Fatalf("%s: available/reserved/sold = %v, want %v", what, got, want)
	}
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
