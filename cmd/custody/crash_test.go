package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
)

// TestKillNineConverges is docs/design.md §8 end to end: buyers place orders while
// the whole platform (every service in one process) is killed with SIGKILL;
// after a restart on the same data directory everything converges. Every
// acknowledged order is there and settled (confirmed or rejected, never
// pending), every confirmed order has exactly one fulfilment and exactly its
// total in escrow, and the stock ledger adds up: nothing lost, nothing
// doubled.
func TestKillNineConverges(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("kill -9 convergence test skipped in -short mode")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	child := serve(t, dir, addr)
	ops := dialAs(t, dir, addr, "platform", "service")
	const stock = 60
	p := createProduct(t, ops.cat, "v-crash", stock, 1000)
	sku := p.GetSkus()[0].GetSkuId()

	// Buyers keep ordering; the platform dies under them.
	var mu sync.Mutex
	acked := map[string]bool{}
	var placed atomic.Int64
	ctx, stopBuyers := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for b := range 8 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				resp, err := ops.ord.PlaceOrder(rctx, &orderv1.PlaceOrderRequest{
					RequestId: fmt.Sprintf("crash-%d-%d", b, i), BuyerId: fmt.Sprintf("b%d", b),
					Lines:           []*orderv1.LineRequest{{SkuId: sku, Quantity: 1}},
					ShippingAddress: address, Payment: &orderv1.Payment{PspReference: fmt.Sprintf("psp-%d-%d", b, i), Amount: eur(1000)},
				})
				cancel()
				if err == nil {
					mu.Lock()
					acked[resp.GetOrder().GetOrderId()] = true
					mu.Unlock()
					placed.Add(1)
				}
			}
		})
	}
	eventually(t, "40 acknowledged orders", func() bool { return placed.Load() >= 40 })
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = child.Process.Wait()
	stopBuyers()
	wg.Wait()
	t0 := time.Now()
	child = serve(t, dir, addr) // same data directory
	t.Logf("restarted in %s", time.Since(t0).Round(time.Millisecond))

	mu.Lock()
	orders := make([]string, 0, len(acked))
	for id := range acked {
		orders = append(orders, id)
	}
	mu.Unlock()
	confirmed := 0
	for _, id := range orders {
		var o *orderv1.Order
		eventually(t, "order "+id+" to settle after the restart", func() bool {
			r, err := ops.ord.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: id})
			if err != nil {
				return false
			}
			o = r.GetOrder()
			return o.GetState() != orderv1.OrderState_ORDER_STATE_PENDING
		})
		if o.GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
			continue
		}
		confirmed++
		var fs []*fulfilmentv1.Fulfilment
		eventually(t, "the fulfilment of "+id, func() bool {
			l, err := ops.ful.ListFulfilments(t.Context(), &fulfilmentv1.ListFulfilmentsRequest{OrderId: id})
			fs = l.GetFulfilments()
			return err == nil && len(fs) > 0
		})
		if len(fs) != 1 {
			t.Errorf("order %s has %d fulfilments, want exactly 1", id, len(fs))
		}
		eventually(t, "the escrow of "+id, func() bool {
			s, err := ops.pay.GetOrderSettlement(t.Context(), &payoutsv1.GetOrderSettlementRequest{OrderId: id})
			return err == nil && s.GetSettlement().GetTotal().GetAmountMinor() == 1000
		})
	}
	if len(orders) < 40 || confirmed == 0 {
		t.Fatalf("%d acknowledged orders, %d confirmed: the test did not exercise anything", len(orders), confirmed)
	}
	// The stock ledger adds up, and every unit reserved belongs to a
	// confirmed order. (Orders placed but never acknowledged may have been
	// stored too; they confirm like any other, so reserved can exceed the
	// acknowledged count, never the units.)
	s := skuOf(t, ops.cat, p.GetProductId())
	if s.GetAvailable()+s.GetReserved()+s.GetSold() != stock || s.GetReserved() < int64(confirmed) {
		t.Fatalf("sku available %d reserved %d sold %d with %d acknowledged confirmed orders; want a ledger of %d",
			s.GetAvailable(), s.GetReserved(), s.GetSold(), confirmed, stock)
	}
	var escrow int64
	eventually(t, "vendor escrow to cover every reservation", func() bool {
		b, err := ops.pay.GetBalance(t.Context(), &payoutsv1.GetBalanceRequest{Owner: "vendor:v-crash"})
		if err != nil || len(b.GetBalances()) == 0 {
			return false
		}
		escrow = b.GetBalances()[0].GetEscrow().GetAmountMinor()
		return escrow == 1000*s.GetReserved()
	})
	t.Logf("%d acknowledged orders, %d confirmed; %d units reserved, %d.%02d EUR in escrow", len(orders), confirmed, s.GetReserved(), escrow/100, escrow%100)
	stop(child)
}
