package app_test

import (
	"errors"
	"testing"
	"time"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/money"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/order/app"
	"github.com/custody/custody/services/order/domain"
)

// A request id reused for another order is refused, and the same request
// again answered with the order it placed, however the service answers the
// repeat: from memory (the process that placed it), through the handler (a
// fresh process that prices the new body), and from the store when the
// body cannot be priced (a fresh process whose catalog view is not ready).
func TestPlaceOrderRefusesARequestIDReusedForAnotherOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	product := e.emit(t, "product-p1", &catalogv1.ProductCreated{ProductId: "p1", VendorId: "v1", Skus: []*catalogv1.SkuCreated{
		{SkuId: "p1-a", Code: "a", Price: &typev1.Money{CurrencyCode: "EUR", AmountMinor: 250}},
	}})
	place := func(svc *app.Service, qty int64, fingerprint string) (app.OrderView, error) {
		return svc.PlaceOrder(t.Context(), app.PlaceOrder{
			RequestID: "r1", BuyerID: "b1", Lines: []domain.LineRequest{{SKUID: "p1-a", Quantity: qty}},
			Address: &typev1.Address{RecipientName: "A", AddressLines: []string{"x"}, Locality: "y", CountryCode: "DE"},
			Payment: domain.Payment{PSPReference: "psp", Amount: money.MustNew("EUR", 250*qty)}, Actor: "buyer:b1",
			Fingerprint: fingerprint,
		})
	}
	first := e.service(t)
	first.CatalogView().Apply(product)
	placed, err := place(first, 4, "fp-a")
	if err != nil {
		t.Fatal(err)
	}
	fresh := e.service(t)
	fresh.CatalogView().Apply(product)
	notReady := app.New(app.Config{CatalogWait: time.Millisecond}, e.p.AppDeps(t, "order"))
	for name, svc := range map[string]*app.Service{"in memory": first, "through the handler": fresh, "from the store": notReady} {
		// The refusal first: the fresh services do not hold the order yet.
		if v, err := place(svc, 2, "fp-b"); !errors.Is(err, es.ErrRequestReused) {
			t.Errorf("%s: the request id for another order = %+v, %v; want ErrRequestReused", name, v.Order, err)
		}
		if v, err := place(svc, 4, "fp-a"); err != nil || v.Order.ID != placed.Order.ID || v.Order.Lines[0].Quantity != 4 {
			t.Errorf("%s: the same request again = %+v, %v; want the order placed", name, v.Order, err)
		}
	}
	if evs := e.events(t, placed.Order.ID); len(evs) != 1 {
		t.Fatalf("the order stream has %d events, want the one OrderPlaced", len(evs))
	}
}
