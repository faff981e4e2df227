package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/custody/custody/pkg/eventstore/jetstream/blockfile"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
)

// TestDamagedStoreRefusesToStart is the operator's view of a damaged disk:
// one flipped byte in the payouts stream's block file. The real binary
// refuses to start, naming the stream and the message; with
// --allow-damaged it starts, the audit's verdict on every order names the
// damage (never "valid"), and the damaged service takes no writes.
func TestDamagedStoreRefusesToStart(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("process-level damage test skipped in -short mode: it starts the real binary three times; make test runs it")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	child := func(extra ...string) *exec.Cmd { return custodyCommand(runArgs(dir, addr, extra...)...) }
	dial := func(roles ...string) *orderClients { return dialAs(t, dir, addr, roles...) }

	// A healthy platform takes three orders into escrow, then stops.
	first := child()
	first.Stderr = os.Stderr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	waitServing(t, addr)
	ops := dial("platform", "service", "support")
	p := createProduct(t, ops.cat, "v-damage", 10, 1500)
	var orders []string
	for i := range 3 {
		r, err := ops.ord.PlaceOrder(t.Context(), &orderv1.PlaceOrderRequest{
			RequestId: fmt.Sprintf("damage-%d", i), BuyerId: "b-damage",
			Lines:           []*orderv1.LineRequest{{SkuId: p.GetSkus()[0].GetSkuId(), Quantity: 1}},
			ShippingAddress: address, Payment: &orderv1.Payment{PspReference: fmt.Sprintf("psp-d-%d", i), Amount: eur(1500)},
			WaitTimeout: durationpb.New(10 * time.Second),
		})
		if err != nil || r.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
			t.Fatalf("order %d: %v %v", i, r.GetOrder().GetState(), err)
		}
		id := r.GetOrder().GetOrderId()
		orders = append(orders, id)
		eventually(t, "the escrow of "+id, func() bool {
			s, err := ops.pay.GetOrderSettlement(t.Context(), &payoutsv1.GetOrderSettlementRequest{OrderId: id})
			return err == nil && s.GetSettlement().GetTotal().GetAmountMinor() == 1500
		})
	}
	stop(first)

	// One flipped byte in the payouts stream's second message.
	if err := blockfile.Edit(blockfile.Msgs(filepath.Join(dir, "nats"), "CUSTODY_PAYOUTS"), 2, func(msg []byte) bool {
		msg[len(msg)/2] ^= 0xff
		return false
	}); err != nil {
		t.Fatal(err)
	}

	// It refuses to start, naming what is damaged; it does not hang.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	refused := child()
	var stderr bytes.Buffer
	refused.Stderr = &stderr
	if err := refused.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { <-ctx.Done(); _ = refused.Process.Kill() }()
	err := refused.Wait()
	if ctx.Err() != nil {
		t.Fatal("the process neither served nor refused within a minute")
	}
	for _, want := range []string{"CUSTODY_PAYOUTS", "message 2", "--allow-damaged"} {
		if err == nil || !strings.Contains(stderr.String(), want) {
			t.Fatalf("start over a damaged store: exit %v; stderr does not name %q:\n%s", err, want, stderr.String())
		}
	}

	// Support starts it read-only for inspection.
	inspect := child("--allow-damaged")
	inspect.Stderr = os.Stderr
	if err := inspect.Start(); err != nil {
		t.Fatal(err)
	}
	defer stop(inspect)
	waitServing(t, addr)
	ops = dial("platform", "service", "support")
	for _, id := range orders {
		v, err := ops.audit.VerifyOrderChain(t.Context(), &auditv1.VerifyOrderChainRequest{OrderId: id})
		if err != nil {
			t.Fatal(err)
		}
		if v.GetValid() || !strings.Contains(v.GetBrokenLink().GetReason(), "payouts store is damaged: message 2") {
			t.Fatalf("verify %s over a damaged store: valid=%v, broken link %v", id, v.GetValid(), v.GetBrokenLink())
		}
	}
	// Reads of the other services go on; the damaged one writes nothing.
	if _, err := ops.ord.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: orders[0]}); err != nil {
		t.Fatalf("reading an order of a sound store: %v", err)
	}
	_, err = ops.pay.RunPayouts(t.Context(), &payoutsv1.RunPayoutsRequest{RequestId: "po-damage"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("a payout from a damaged ledger: %v, want FailedPrecondition", err)
	}
}
