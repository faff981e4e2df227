package app_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/money"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/order/app"
	"github.com/custody/custody/services/order/domain"
)

// The catalog view folds a product's life: a new price prices the orders
// placed after it, a SKU added later is known, an archived product's SKUs
// are refused with PRODUCT_ARCHIVED and nothing stored.
func TestCatalogViewFollowsTheProductsLife(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	view := svc.CatalogView()
	eur := func(m int64) *typev1.Money { return &typev1.Money{CurrencyCode: "EUR", AmountMinor: m} }
	view.Apply(e.emit(t, "product-p1", &catalogv1.ProductCreated{ProductId: "p1", VendorId: "v1", Title: "Tee",
		Skus: []*catalogv1.SkuCreated{{SkuId: "p1-a", Code: "a", Title: "A", Price: eur(100), InitialStock: 5}}}))
	view.Apply(e.emit(t, "product-p1", &catalogv1.SkuPriceChanged{ProductId: "p1", SkuId: "p1-a", Price: eur(150), PreviousPrice: eur(100)}))
	view.Apply(e.emit(t, "product-p1", &catalogv1.ProductUpdated{ProductId: "p1", Title: "Tee v2"}))
	view.Apply(e.emit(t, "product-p1", &catalogv1.SkuAdded{ProductId: "p1", Sku: &catalogv1.SkuCreated{SkuId: "p1-b", Code: "b", Price: eur(90), InitialStock: 2}}))
	if s, _ := view.SKU("p1-a"); s.Price != money.MustNew("EUR", 150) || s.Archived {
		t.Fatalf("p1-a %+v, want the new price", s)
	}
	if s, ok := view.SKU("p1-b"); !ok || s.Price != money.MustNew("EUR", 90) || s.VendorID != "v1" || s.ProductID != "p1" || s.Title != "Tee v2" {
		t.Fatalf("p1-b %+v %v: want the added SKU, titled after its product", s, ok)
	}
	if st := view.Stock("p1-b"); !st.Known || st.Total != 2 {
		t.Fatalf("p1-b's stock %+v", st)
	}
	place := func(request string, sku string, amount int64) error {
		_, err := svc.PlaceOrder(t.Context(), app.PlaceOrder{
			RequestID: request, BuyerID: "b1", Lines: []domain.LineRequest{{SKUID: sku, Quantity: 1}},
			Address: &typev1.Address{RecipientName: "A", AddressLines: []string{"x"}, Locality: "y", CountryCode: "DE"},
			Payment: domain.Payment{PSPReference: "psp-" + request, Amount: money.MustNew("EUR", amount)}, Actor: "buyer:b1",
		})
		return err
	}
	if err := place("r1", "p1-a", 150); err != nil {
		t.Fatalf("an order at the new price: %v", err)
	}
	view.Apply(e.emit(t, "product-p1", &catalogv1.ProductArchived{ProductId: "p1", VendorId: "v1"}))
	for _, sku := range []string{"p1-a", "p1-b"} {
		err := place("r-"+sku, sku, 150)
		var pe *fault.PreconditionError
		if !errors.As(err, &pe) || pe.Reason != domain.ReasonProductArchived || !strings.Contains(pe.Message, "p1") {
			t.Fatalf("%s after the archive: %v, want PRODUCT_ARCHIVED naming p1", sku, err)
		}
		if evs := e.events(t, domain.OrderID("b1", "r-"+sku)); len(evs) != 0 {
			t.Fatalf("a refused order stored %d events", len(evs))
		}
	}
}
