package main

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"

	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
)

// TestCheckpointsSurviveKills: the all-in-one saves its read models every
// millisecond, so a SIGKILL right after a burst of orders lands while
// checkpoints are being written (between a read model's state and its
// position, were they written apart). Each round orders, waits until every
// read model has it, kills the process and starts it again: the read
// models answer exactly what they answered before (nothing applied twice,
// nothing missing), as soon as the process serves again.
func TestCheckpointsSurviveKills(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("kill -9 checkpoint test skipped in -short mode: it kills and restarts the real binary four times; make test runs it")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	start := func() *exec.Cmd { return serve(t, dir, addr, "--checkpoint-every=1ms") }
	child := start()
	ops := dialAs(t, dir, addr, "platform", "service") // reconnects after each restart
	const stock, price = 100, 700
	p := createProduct(t, ops.cat, "v-ckpt", stock, price)
	sku := p.GetSkus()[0].GetSkuId()

	// answers are what the read models answer about the buyer's orders,
	// the SKU's stock, the orders' fulfilments and the vendor's balance,
	// and the audit's timeline and chain of the orders of earlier rounds
	// (settled: the current round's may still be gaining events when the
	// process is killed).
	var settled []string
	answers := func() (string, error) {
		var b strings.Builder
		var ids []string
		for tok := ""; ; {
			r, err := ops.ord.ListOrders(t.Context(), &orderv1.ListOrdersRequest{BuyerId: "ckpt-buyer", PageSize: 7, PageToken: tok})
			if err != nil {
				return "", err
			}
			for _, o := range r.GetOrders() {
				ids = append(ids, o.GetOrderId())
				fmt.Fprintf(&b, "order %s %s\n", o.GetOrderId(), o.GetState())
			}
			if tok = r.GetNextPageToken(); tok == "" {
				break
			}
		}
		slices.Sort(ids)
		for _, id := range ids {
			l, err := ops.ful.ListFulfilments(t.Context(), &fulfilmentv1.ListFulfilmentsRequest{OrderId: id})
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&b, "order %s: %d fulfilments\n", id, len(l.GetFulfilments()))
		}
		s := skuOf(t, ops.cat, p.GetProductId())
		fmt.Fprintf(&b, "sku available %d reserved %d sold %d\n", s.GetAvailable(), s.GetReserved(), s.GetSold())
		bal, err := ops.pay.GetBalance(t.Context(), &payoutsv1.GetBalanceRequest{Owner: "vendor:v-ckpt"})
		if err != nil {
			return "", err
		}
		for _, x := range bal.GetBalances() {
			fmt.Fprintf(&b, "balance escrow %d available %d\n", x.GetEscrow().GetAmountMinor(), x.GetAvailable().GetAmountMinor())
		}
		for _, id := range settled {
			tl, err := ops.audit.GetOrderTimeline(t.Context(), &auditv1.GetOrderTimelineRequest{OrderId: id, PageSize: 1000})
			if err != nil {
				return "", err
			}
			var types []string
			for _, e := range tl.GetEvents() {
				types = append(types, e.GetService()+"/"+e.GetType())
			}
			v, err := ops.audit.VerifyOrderChain(t.Context(), &auditv1.VerifyOrderChainRequest{OrderId: id})
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&b, "audit %s: %d events %v, chain valid %v\n", id, tl.GetTotalSize(), types, v.GetValid())
		}
		return b.String(), nil
	}

	placed := 0
	for round := range 4 {
		for i := range 5 {
			_, err := ops.ord.PlaceOrder(t.Context(), &orderv1.PlaceOrderRequest{
				RequestId: fmt.Sprintf("ckpt-%d-%d", round, i), BuyerId: "ckpt-buyer",
				Lines:           []*orderv1.LineRequest{{SkuId: sku, Quantity: 1}},
				ShippingAddress: address, Payment: &orderv1.Payment{PspReference: fmt.Sprintf("psp-ckpt-%d-%d", round, i), Amount: eur(price)},
			})
			if err != nil {
				t.Fatal(err)
			}
			placed++
		}
		// Every order confirmed, fulfilled once and in escrow: the
		// answers to keep across the kill.
		var before string
		eventually(t, fmt.Sprintf("round %d: %d orders through every read model", round, placed), func() bool {
			a, err := answers()
			before = a
			return err == nil &&
				strings.Count(a, "ORDER_STATE_CONFIRMED") == placed &&
				strings.Count(a, ": 1 fulfilments") == placed &&
				strings.Contains(a, fmt.Sprintf("reserved %d ", placed)) &&
				strings.Contains(a, fmt.Sprintf("escrow %d ", placed*price))
		})
		if err := child.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_, _ = child.Process.Wait()
		child = start()
		after, err := answers()
		if err != nil {
			t.Fatal(err)
		}
		if after != before {
			t.Fatalf("round %d: after the restart the read models answer\n%s\nwhere before they answered\n%s", round, after, before)
		}
		if round > 0 && (!strings.Contains(after, "chain valid true") || strings.Contains(after, "chain valid false") || strings.Contains(after, ": 0 events")) {
			t.Fatalf("round %d: the audit does not answer for the settled orders:\n%s", round, after)
		}
		settled = nil
		for _, line := range strings.Split(after, "\n") {
			if id, ok := strings.CutPrefix(line, "order "); ok && !strings.Contains(id, ":") {
				settled = append(settled, strings.Fields(id)[0])
			}
		}
	}
	stop(child)
}
