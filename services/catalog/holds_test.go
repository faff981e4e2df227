package catalog_test

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
)

// The durable consumer of order events is re-created (deleted while the
// process is down, as an operator resetting it would) and replays the
// order stream from its first event: orders that finished long ago — and
// whose holds the products no longer keep — are decided once all the
// same. Nothing is held or released again, even with stock back on the
// shelf, and the products record nothing new.
func TestReplayOfEveryOrderDecidesNothingAgain(t *testing.T) {
	t.Parallel()
	p, _ := start(t)
	ctx := t.Context()
	v := vendor(t, p, "v1")
	pid := product(t, v, "p1", "v1", 5, 2)
	black, white := pid+"-black_m", pid+"-white_m"
	order := func(orderID string, m proto.Message) { p.Emit(t, "order", "order-"+orderID, m) }
	cancel := func(orderID string) {
		order(orderID, &orderv1.OrderCancelled{OrderId: orderID, Reason: "changed mind", CancelledBy: "buyer:b1", ProductIds: []string{pid}})
	}

	order("o1", orderPlaced("o1", map[string]int64{black: 2})) // reserved, then cancelled
	cancel("o1")
	order("o2", orderPlaced("o2", map[string]int64{white: 9})) // refused
	cancel("o3")                                               // cancelled before it arrived
	order("o3", orderPlaced("o3", map[string]int64{black: 1}))
	order("o4", orderPlaced("o4", map[string]int64{black: 1, white: 1}))           // reserved, still holds
	reacted(t, p, "o4 reserved", stockIs(t, v, pid, "white_m", [3]int64{1, 1, 0})) // and every order event handled
	holds(t, stockIs(t, v, pid, "black_m", [3]int64{4, 1, 0}))
	// Stock back on the shelf: holding o1, o2 or o3 again would succeed.
	for sku, n := range map[string]int64{black: 10, white: 10} {
		if _, err := v.AdjustStock(ctx, &catalogv1.AdjustStockRequest{RequestId: "restock-" + sku, SkuId: sku, Delta: n}); err != nil {
			t.Fatal(err)
		}
	}
	before := events(t, p, "product-"+pid)

	replayOrders(t, p)
	v = client(t, p, "vendor:v1")
	p.Settled(t) // the new consumer has handled every order event again

	if got := events(t, p, "product-"+pid); !slices.Equal(got, before) {
		t.Fatalf("the replay recorded %v on the product", got[len(before):])
	}
	holds(t, stockIs(t, v, pid, "black_m", [3]int64{14, 1, 0}), stockIs(t, v, pid, "white_m", [3]int64{11, 1, 0}))
}
