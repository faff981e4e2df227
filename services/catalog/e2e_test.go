package catalog_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/platform/platformtest"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/catalog"
	"github.com/custody/custody/services/fulfilment"
	"github.com/custody/custody/services/order"
)

// TestLifecycleAcrossServices runs the catalog, order and fulfilment
// services in one process (embedded NATS, fake clock) and drives them
// through gRPC: a price change leaves an existing order as it was and
// prices the next one, in the same client flow; an archived product
// refuses new orders with PRODUCT_ARCHIVED; a vendor's handling time sets
// its part's ship-by deadline, the platform's setting the other vendor's.
func TestLifecycleAcrossServices(t *testing.T) {
	t.Parallel()
	const platformHandling, acmeHandling = 72 * time.Hour, 24 * time.Hour
	clk := clock.NewFake(t0)
	p := platformtest.Start(t, platformtest.Options{Clock: clk, Streams: []string{"catalog", "order", "fulfilment"}},
		catalog.Module(), order.NewModule(order.Options{}), fulfilment.NewModule(fulfilment.Options{HandlingTime: platformHandling}))
	ctx := t.Context()
	acme, globex := client(t, p, "vendor:acme"), client(t, p, "vendor:globex")
	if _, err := acme.RegisterVendor(ctx, &catalogv1.RegisterVendorRequest{RequestId: "reg", VendorId: "acme", DisplayName: "Acme", CountryCode: "DE",
		HandlingTime: durationpb.New(acmeHandling)}); err != nil {
		t.Fatal(err)
	}
	register(t, globex, "globex")                                   // no handling time: the platform's
	tee := product(t, acme, "tee", "acme", 10, 10) + "-black_m"     // 19.99
	mug := product(t, globex, "mug", "globex", 10, 10) + "-white_m" // 24.99
	buyer := platformtest.Client(t, p, orderv1.NewOrderServiceClient, "buyer:ada")
	addr := &typev1.Address{RecipientName: "Ada", AddressLines: []string{"1 Main St"}, Locality: "Berlin", PostalCode: "10115", CountryCode: "DE"}
	place := func(requestID string, teeUnits int64, amount int64, lines ...*orderv1.LineRequest) (*orderv1.Order, error) {
		lines = append([]*orderv1.LineRequest{{SkuId: tee, Quantity: teeUnits}}, lines...)
		resp, err := buyer.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{RequestId: requestID, BuyerId: "ada", Lines: lines, ShippingAddress: addr,
			Payment: &orderv1.Payment{PspReference: "psp-" + requestID, Amount: eur(amount)}, WaitTimeout: durationpb.New(20 * time.Second)})
		return resp.GetOrder(), err
	}
	unitPrice := func(o *orderv1.Order) int64 { return o.GetLines()[0].GetUnitPrice().GetAmountMinor() }

	// Two tees and a mug at the prices of the moment.
	first, err := place("o1", 2, 2*1999+2499, &orderv1.LineRequest{SkuId: mug, Quantity: 1})
	if err != nil || first.GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
		t.Fatalf("first order: %v %v", first.GetState(), err)
	}

	// The tee costs 25.00 from now on; the buyer, who read the new price,
	// orders at once: the order service's view catches up when the payment
	// is not the total it has.
	if _, err := acme.SetSkuPrice(ctx, &catalogv1.SetSkuPriceRequest{RequestId: "price-1", SkuId: tee, Price: eur(2500)}); err != nil {
		t.Fatal(err)
	}
	second, err := place("o2", 1, 2500)
	if err != nil || second.GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED || unitPrice(second) != 2500 || second.GetTotal().GetAmountMinor() != 2500 {
		t.Fatalf("second order: %v, %v", second, err)
	}
	// The old price is no longer on offer.
	_, err = place("o3", 1, 1999)
	platformtest.WantField(t, err, "payment.amount")
	// The first order keeps its price.
	got, err := buyer.GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: first.GetOrderId()})
	if err != nil || unitPrice(got.GetOrder()) != 1999 || got.GetOrder().GetTotal().GetAmountMinor() != 2*1999+2499 {
		t.Fatalf("first order after the price change: %v, %v", got.GetOrder(), err)
	}

	// Each part's ship-by deadline: the confirmation plus its vendor's
	// handling time, else the platform's.
	shipBy := func(vendorID string) time.Time {
		f := platformtest.Client(t, p, fulfilmentv1.NewFulfilmentServiceClient, "vendor:"+vendorID)
		var at time.Time
		platformtest.Eventually(t, vendorID+"'s fulfilment", func() error {
			l, err := f.ListFulfilments(ctx, &fulfilmentv1.ListFulfilmentsRequest{VendorId: vendorID, OrderId: first.GetOrderId()})
			if err != nil || len(l.GetFulfilments()) != 1 {
				return fmt.Errorf("fulfilments %v: %v", l.GetFulfilments(), err)
			}
			at = l.GetFulfilments()[0].GetShipByTime().AsTime()
			return nil
		})
		return at
	}
	confirmed := first.GetUpdateTime().AsTime()
	if got := shipBy("acme").Sub(confirmed); got != acmeHandling {
		t.Errorf("acme's part ships by confirmation + %s, want its handling time %s", got, acmeHandling)
	}
	if got := shipBy("globex").Sub(confirmed); got != platformHandling {
		t.Errorf("globex's part ships by confirmation + %s, want the platform's %s", got, platformHandling)
	}

	// acme stops selling the tee. Once the order service's view has the
	// archive (the platform settles; an order placed within the view's lag
	// is rejected by the catalog's reservation instead), a new order is
	// refused at once, naming the product; nothing is stored.
	if _, err := acme.ArchiveProduct(ctx, &catalogv1.ArchiveProductRequest{RequestId: "arch", ProductId: tee[:len(tee)-len("-black_m")], Reason: "discontinued"}); err != nil {
		t.Fatal(err)
	}
	p.Settled(t)
	p.WritesNothing(t, "order", func() {
		_, err = place("o4", 1, 2500)
		platformtest.WantReason(t, err, codes.FailedPrecondition, "PRODUCT_ARCHIVED")
	})
	// The orders placed before stand, their stock still held.
	for _, o := range []*orderv1.Order{first, second} {
		got, err := buyer.GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: o.GetOrderId()})
		if err != nil || got.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
			t.Fatalf("order %s after the archive: %v %v", o.GetOrderId(), got.GetOrder().GetState(), err)
		}
	}
	holds(t, stockIs(t, acme, tee[:len(tee)-len("-black_m")], "black_m", [3]int64{7, 3, 0}))
}
