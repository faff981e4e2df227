package catalog_test

import (
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/services/catalog"

	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
)

// linesCancelled is the order service's OrderLinesCancelled of units per
// SKU (vendor v1's lines unless another vendor is named).
func linesCancelled(orderID string, units map[string]int64) *orderv1.OrderLinesCancelled {
	ev := &orderv1.OrderLinesCancelled{OrderId: orderID, Reason: "out of stock", CancelledBy: "vendor:v1", CancelTime: timestamppb.New(t0)}
	for sku, n := range units {
		ev.Lines = append(ev.Lines, &orderv1.CancelledLine{LineId: sku, SkuId: sku, Quantity: n})
	}
	return ev
}

// An order cancels some of its units: they go back on sale once — not
// again when the event is delivered again (the durable consumer re-created
// and replaying the order stream), and not again when the whole order is
// cancelled later (only the rest goes back) or when the vendor's
// fulfilment is cancelled by the ship-by policy.
func TestCancelledLinesGoBackOnSaleOnce(t *testing.T) {
	t.Parallel()
	p, _ := start(t)
	v1, v2 := vendor(t, p, "v1"), vendor(t, p, "v2")
	p1, p2 := product(t, v1, "p1", "v1", 5, 5), product(t, v2, "p2", "v2", 5, 5)
	black, white, other := p1+"-black_m", p1+"-white_m", p2+"-black_m"

	// o1: one product, reserved by it alone.
	p.Emit(t, "order", "order-o1", orderPlaced("o1", map[string]int64{black: 3, white: 1}))
	reacted(t, p, "o1 reserved", stockIs(t, v1, p1, "black_m", [3]int64{2, 3, 0}))
	p.Emit(t, "order", "order-o1", linesCancelled("o1", map[string]int64{black: 1}))
	reacted(t, p, "one unit back", stockIs(t, v1, p1, "black_m", [3]int64{3, 2, 0}))
	holds(t, stockIs(t, v1, p1, "white_m", [3]int64{4, 1, 0}))
	before := events(t, p, "product-"+p1)
	// The release says who cancelled, not why: the order's reason is the
	// canceller's words, sealed under the buyer's key, and the catalog's
	// events name no buyer.
	released := 0
	for _, m := range p.Events(t, catalog.Name, "product-"+p1) {
		if r, ok := m.(*catalogv1.StockHoldReleased); ok {
			released++
			if r.GetReason() != "order lines cancelled by vendor:v1" {
				t.Errorf("StockHoldReleased reason %q, want who cancelled", r.GetReason())
			}
		}
	}
	if released != 1 {
		t.Errorf("%d StockHoldReleased, want 1", released)
	}

	// Delivered again: the consumer is re-created and replays the order stream.
	replayOrders(t, p)
	v1, v2 = client(t, p, "vendor:v1"), client(t, p, "vendor:v2")
	p.Settled(t)
	if got := events(t, p, "product-"+p1); len(got) != len(before) {
		t.Fatalf("the replay recorded %v", got[len(before):])
	}
	holds(t, stockIs(t, v1, p1, "black_m", [3]int64{3, 2, 0}))

	// The whole order cancelled: the rest goes back, nothing twice.
	p.Emit(t, "order", "order-o1", &orderv1.OrderCancelled{OrderId: "o1", Reason: "changed mind", CancelledBy: "buyer:b1", ProductIds: []string{p1}})
	reacted(t, p, "the rest back", stockIs(t, v1, p1, "black_m", [3]int64{5, 0, 0}))
	holds(t, stockIs(t, v1, p1, "white_m", [3]int64{5, 0, 0}))

	// o2 across products (vendors v1 and v2): v2's part loses a unit, then
	// its fulfilment is cancelled by the ship-by policy.
	p.Emit(t, "order", "order-o2", orderPlaced("o2", map[string]int64{black: 1, other: 3}))
	reacted(t, p, "o2 reserved", eventsAre(t, p, "reservation-o2", requested, reserved))
	p.Emit(t, "order", "order-o2", linesCancelled("o2", map[string]int64{other: 1}))
	reacted(t, p, "o2: one unit back", stockIs(t, v2, p2, "black_m", [3]int64{3, 2, 0}))
	p.Emit(t, "fulfilment", "fulfilment-f2", &fulfilmentv1.FulfilmentCancelled{FulfilmentId: "f2", OrderId: "o2", VendorId: "v2", Reason: "ship-by deadline missed"})
	reacted(t, p, "o2: v2's rest back", stockIs(t, v2, p2, "black_m", [3]int64{5, 0, 0}))
	holds(t, stockIs(t, v1, p1, "black_m", [3]int64{4, 1, 0}))
}
