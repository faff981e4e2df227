package app_test

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/fault"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/catalog/domain"
)

const (
	tSold      = "custody.catalog.v1.StockSold"
	tRestocked = "custody.catalog.v1.StockRestocked"
)

// shipped is a FulfilmentShipped of order o1's fulfilment f1.
func shipped(shipment string, lines ...line) *fulfilmentv1.FulfilmentShipped {
	ev := &fulfilmentv1.FulfilmentShipped{FulfilmentId: "f1", OrderId: "o1", VendorId: "v1", ShipmentId: shipment, Carrier: "dhl", TrackingNumber: "t-" + shipment}
	for _, l := range lines {
		ev.Lines = append(ev.Lines, &fulfilmentv1.ShippedLine{SkuId: l.sku, Quantity: l.qty})
	}
	return ev
}

// returned is a ReturnReceived of order o1.
func returned(returnID string, restock bool, lines ...line) *trustv1.ReturnReceived {
	ev := &trustv1.ReturnReceived{ClaimId: "c1", ReturnId: returnID, OrderId: "o1", VendorId: "v1", Restock: restock,
		Condition: trustv1.ReturnCondition_RETURN_CONDITION_AS_EXPECTED}
	if !restock {
		ev.Condition = trustv1.ReturnCondition_RETURN_CONDITION_DAMAGED
	}
	for _, l := range lines {
		ev.Lines = append(ev.Lines, &trustv1.ClaimLine{SkuId: l.sku, Quantity: l.qty})
	}
	return ev
}

// Shipments sell what order o1 holds (reserved → sold), shipment by
// shipment; resellable returns put units back on sale (sold → available).
// Each event is handled twice (a redelivery) and moves stock once.
func TestShipmentsSellAndReturnsRestock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.product(t, "r1", 5, 5)
	a, b := domain.SKUID(p, "a"), domain.SKUID(p, "b")
	e.handle(t, e.order(t, "o1", "placed", placed("o1", line{a, 3}, line{b, 1})))
	// handle publishes m as its service would and hands it to the handler
	// twice (a redelivery): both deliveries end alike.
	handle := func(kind string, m proto.Message) error {
		t.Helper()
		service, stream, routes := "fulfilment", "fulfilment-f1", e.app.ShipmentRoutes()
		if _, ok := m.(*trustv1.ReturnReceived); ok {
			service, stream, routes = "trust", "claim-c1", e.app.ReturnRoutes()
		}
		rec := e.publish(t, service, stream, "o1", kind, m)
		err := routes.Handle(t.Context(), rec)
		if again := routes.Handle(t.Context(), rec); (again == nil) != (err == nil) {
			t.Fatalf("%s redelivered: %v, first delivery: %v", kind, again, err)
		}
		return err
	}
	steps := []struct {
		name   string
		kind   string
		event  proto.Message
		a, b   [3]int64 // available, reserved, sold afterwards
		parked bool
	}{
		{"part of a line ships", "s1", shipped("s1", line{a, 2}), [3]int64{2, 1, 2}, [3]int64{4, 1, 0}, false},
		{"the rest ships", "s2", shipped("s2", line{a, 1}, line{b, 1}), [3]int64{2, 0, 3}, [3]int64{4, 0, 1}, false},
		{"a shipment published again under another event id", "s2-again", shipped("s2", line{a, 1}, line{b, 1}), [3]int64{2, 0, 3}, [3]int64{4, 0, 1}, false},
		{"more than was held ships: parked", "s3", shipped("s3", line{a, 1}), [3]int64{2, 0, 3}, [3]int64{4, 0, 1}, true},
		{"a sku that names no product: parked", "s4", shipped("s4", line{"garbage", 1}), [3]int64{2, 0, 3}, [3]int64{4, 0, 1}, true},
		{"a resellable return", "r1", returned("r1", true, line{a, 2}), [3]int64{4, 0, 1}, [3]int64{4, 0, 1}, false},
		{"a return published again", "r1-again", returned("r1", true, line{a, 2}), [3]int64{4, 0, 1}, [3]int64{4, 0, 1}, false},
		{"a damaged return stays off the shelf", "r2", returned("r2", false, line{b, 1}), [3]int64{4, 0, 1}, [3]int64{4, 0, 1}, false},
		{"more returned than shipped: parked", "r3", returned("r3", true, line{a, 2}), [3]int64{4, 0, 1}, [3]int64{4, 0, 1}, true},
	}
	for _, s := range steps {
		err := handle(s.kind, s.event)
		if fault.IsPermanent(err) != s.parked || (err != nil && !s.parked) {
			t.Fatalf("%s: err = %v, want parked %v", s.name, err, s.parked)
		}
		e.wantStock(t, s.name+": sku a", a, s.a)
		e.wantStock(t, s.name+": sku b", b, s.b)
	}
	pr, err := e.app.Product(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if h := pr.HoldFor("o1"); h.Status != domain.HoldSold || !slices.Equal(h.Shipments, []string{"f1/s1", "f1/s2"}) || !slices.Equal(h.Returns, []string{"r1"}) {
		t.Fatalf("hold %+v", h)
	}
	got := e.events(t, "product-"+p)
	if n := len(got); n < 3 || !slices.Equal(got[n-3:], []string{tSold, tSold, tRestocked}) {
		t.Fatalf("product events %v: want two sales and a restock last", got)
	}
}

// A fulfilment cancelled by the ship-by policy releases what its vendor's
// products hold for the order; the other vendors' holds stand.
func TestFulfilmentCancelledReleasesTheVendorsPart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p1, p2 := e.productOf(t, "v1", "r1", 5, 5), e.productOf(t, "v2", "r1", 5, 5)
	a1, a2 := domain.SKUID(p1, "a"), domain.SKUID(p2, "a")
	e.handle(t, e.order(t, "o1", "placed", placed("o1", line{a1, 1}, line{a2, 2})))
	cancelled := &fulfilmentv1.FulfilmentCancelled{FulfilmentId: "f2", OrderId: "o1", VendorId: "v2", Reason: "not shipped by the deadline"}
	rec := e.publish(t, "fulfilment", "fulfilment-f2", "o1", "cancelled", cancelled)
	for range 2 {
		if err := e.app.ShipmentRoutes().Handle(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}
	e.wantStock(t, "v2's sku, released", a2, [3]int64{5, 0, 0})
	e.wantStock(t, "v1's sku, still reserved", a1, [3]int64{4, 1, 0})
	if got := e.events(t, "product-"+p2); got[len(got)-1] != tHoldRel || slices.Index(got, tHoldRel) != len(got)-1 {
		t.Fatalf("v2's product events %v: want one release, last", got)
	}
	// An order the catalog never reserved: nothing to release.
	other := e.publish(t, "fulfilment", "fulfilment-f3", "o9", "cancelled", &fulfilmentv1.FulfilmentCancelled{FulfilmentId: "f3", OrderId: "o9", VendorId: "v1"})
	if err := e.app.ShipmentRoutes().Handle(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	if got := e.events(t, "reservation-o9"); got != nil {
		t.Fatalf("reservation-o9 events %v", got)
	}
}
