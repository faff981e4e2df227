package payouts_test

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
)

// The story the issue asks for, through gRPC with the fake clock: an order
// with an affiliate link is confirmed, shipped and delivered; the return
// window closes; a payout run pays vendor, creator and platform exactly to
// the minor unit; a refund after the payout is clawed back, and the next
// payout is reduced by exactly that.
func TestEndToEndPayoutAndClawback(t *testing.T) {
	vendor, creator := id("acme"), id("cleo")
	owner, cowner := "vendor:"+vendor, "creator:"+creator
	platform := balance(t, "platform").GetAvailable().GetAmountMinor()
	order1 := id("o")

	// 3 × 33.33 through the creator's link at 10%, and 1 × 0.99 unattributed;
	// merchant fee 5%, the vendor is on the standard tier (5% reserve):
	//   line 1: 99.99 = commission 9.99 + fee 4.99 + vendor 85.01
	//   line 2:  0.99 =                  fee 0.04 + vendor  0.95
	//   vendor share 85.96 = reserve 4.29 + net 81.67
	// 81.67 + 4.29 + 9.99 + 5.03 = 100.98 captured.
	confirm(t, confirmed(order1, creator,
		line("1", vendor, 3, 3333, creator, 1000),
		line("2", vendor, 1, 99, "", 0)))
	waitBalance(t, owner, bal{escrow: 10098})

	deliver(t, order1, vendor) // shipped, then delivered
	waitBalance(t, owner, bal{pending: 8596})
	waitBalance(t, cowner, bal{pending: 999})
	part := waitStage(t, order1, vendor, payoutsv1.FundsStage_FUNDS_STAGE_PENDING)
	if got := part.GetWindowCloseTime().AsTime(); !got.Equal(clk.Now().Add(7 * day)) {
		t.Fatalf("window closes %s, want 7 days after delivery", got)
	}

	clk.Advance(7*day - 1)
	p.Settled(t)
	if b := balOf(balance(t, owner)); b.available != 0 {
		t.Fatalf("released before the window closed: %+v", b)
	}
	clk.Advance(1)
	waitBalance(t, owner, bal{available: 8167, reserve: 429})
	waitBalance(t, cowner, bal{available: 999})
	if got := balance(t, "platform").GetAvailable().GetAmountMinor() - platform; got != 503 {
		t.Fatalf("platform earned %d, want 503", got)
	}

	run := &payoutsv1.RunPayoutsRequest{RequestId: id("run-")}
	resp, err := as(t, "platform").RunPayouts(t.Context(), run)
	if err != nil {
		t.Fatal(err)
	}
	batch := resp.GetBatch()
	if got := paidTo(batch, owner); got != 8167 {
		t.Fatalf("vendor paid %d, want 81.67: %v", got, batch)
	}
	if got := paidTo(batch, cowner); got != 999 {
		t.Fatalf("creator paid %d, want 9.99: %v", got, batch)
	}
	if paidTo(batch, "platform") != 0 {
		t.Fatal("the platform's fees are not paid out")
	}
	waitBalance(t, owner, bal{reserve: 429, paid: 8167})

	// The same request again returns the same batch and pays nothing more.
	again, err := as(t, "platform").RunPayouts(t.Context(), run)
	if err != nil || !proto.Equal(again.GetBatch(), batch) {
		t.Fatalf("repeated run: %v, %v", again, err)
	}
	got, err := as(t, "support").GetPayoutBatch(t.Context(), &payoutsv1.GetPayoutBatchRequest{BatchId: batch.GetBatchId()})
	if err != nil || !proto.Equal(got.GetBatch(), batch) {
		t.Fatalf("GetPayoutBatch: %v, %v", got, err)
	}

	// A refund of one unit of line 1 after the payout: line 1 keeps 66.66 =
	// commission 6.66 + fee 3.33 + vendor 56.67, so 28.34 is clawed back from
	// the vendor, 3.33 from the creator, 1.66 from the platform's fees.
	refund := refunded(t, id("rf"), order1, vendor, 3333, &trustv1.ClaimLine{LineId: "1", Quantity: 1, Amount: eur(3333)})
	waitBalance(t, owner, bal{available: -2834, reserve: 429, paid: 8167})
	waitBalance(t, cowner, bal{available: -333, paid: 999})
	if got := balance(t, "platform").GetAvailable().GetAmountMinor() - platform; got != 503-166 {
		t.Fatalf("platform keeps %d after the refund, want %d", got, 503-166)
	}
	// A negative balance is never paid.
	resp, err = as(t, "platform").RunPayouts(t.Context(), &payoutsv1.RunPayoutsRequest{RequestId: id("run-")})
	if err != nil || paidTo(resp.GetBatch(), owner) != 0 || paidTo(resp.GetBatch(), cowner) != 0 {
		t.Fatalf("paid a negative balance: %v, %v", resp, err)
	}

	// A second order through the same link, 100.00: commission 10.00, fee
	// 5.00, vendor 85.00 = reserve 4.25 + net 80.75.
	order2 := id("o")
	confirm(t, confirmed(order2, creator, line("1", vendor, 1, 10000, creator, 1000)))
	deliver(t, order2, vendor)
	waitStage(t, order2, vendor, payoutsv1.FundsStage_FUNDS_STAGE_PENDING)
	clk.Advance(7 * day)
	waitBalance(t, owner, bal{available: 8075 - 2834, reserve: 429 + 425, paid: 8167})
	resp, err = as(t, "platform").RunPayouts(t.Context(), &payoutsv1.RunPayoutsRequest{RequestId: id("run-")})
	if err != nil {
		t.Fatal(err)
	}
	if got := paidTo(resp.GetBatch(), owner); got != 8075-2834 {
		t.Fatalf("next vendor payout %d, want 80.75 - 28.34 = %d", got, 8075-2834)
	}
	if got := paidTo(resp.GetBatch(), cowner); got != 1000-333 {
		t.Fatalf("next creator payout %d, want 10.00 - 3.33 = %d", got, 1000-333)
	}

	// The reserves are released after 30 days and paid in the next run.
	clk.Advance(30 * day)
	waitBalance(t, owner, bal{available: 429 + 425, paid: 8167 + 8075 - 2834})
	resp, err = as(t, "platform").RunPayouts(t.Context(), &payoutsv1.RunPayoutsRequest{RequestId: id("run-")})
	if err != nil || paidTo(resp.GetBatch(), owner) != 854 {
		t.Fatalf("reserve payout: %v, %v", resp, err)
	}
	// In all, the vendor was paid exactly its share of what the buyer kept:
	// 85.96 - 28.34 + 85.00.
	waitBalance(t, owner, bal{paid: 8596 - 2834 + 8500})

	// The vendor's statement explains every cent by its cause.
	st, err := as(t, owner).GetStatement(t.Context(), &payoutsv1.GetStatementRequest{Account: owner + ":available"})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []payoutsv1.TransactionKind
	for _, en := range st.GetEntries() {
		kinds = append(kinds, en.GetKind())
		if en.GetCauseEventId() == "" || en.GetCauseType() == "" || en.GetTransactionId() == "" {
			t.Errorf("entry without a cause: %v", en)
		}
		if en.GetKind() == payoutsv1.TransactionKind_TRANSACTION_KIND_CLAWBACK &&
			(en.GetCauseEventId() != refund[0].ID || en.GetCauseType() != "custody.trust.v1.RefundIssued" || en.GetOrderId() != order1) {
			t.Errorf("clawback cause: %v", en)
		}
	}
	K := payoutsv1.TransactionKind_value
	want := []payoutsv1.TransactionKind{
		payoutsv1.TransactionKind(K["TRANSACTION_KIND_RELEASE"]), payoutsv1.TransactionKind(K["TRANSACTION_KIND_PAYOUT"]),
		payoutsv1.TransactionKind(K["TRANSACTION_KIND_CLAWBACK"]), payoutsv1.TransactionKind(K["TRANSACTION_KIND_RELEASE"]),
		payoutsv1.TransactionKind(K["TRANSACTION_KIND_PAYOUT"]), payoutsv1.TransactionKind(K["TRANSACTION_KIND_RESERVE_RELEASE"]),
		payoutsv1.TransactionKind(K["TRANSACTION_KIND_RESERVE_RELEASE"]), payoutsv1.TransactionKind(K["TRANSACTION_KIND_PAYOUT"]),
	}
	if !slices.Equal(kinds, want) {
		t.Errorf("statement kinds %v, want %v", kinds, want)
	}
	if len(st.GetTotals()) != 1 || st.GetTotals()[0].GetClosing().GetAmountMinor() != 0 ||
		st.GetTotals()[0].GetCredits().GetAmountMinor() != 8167+8075+854 {
		t.Errorf("statement totals %v", st.GetTotals())
	}
}
