package payouts_test

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/platform/platformtest"
	"github.com/custody/custody/pkg/server/servertest"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	"github.com/custody/custody/services/payouts"
)

// Vendors and creators see only their own accounts; support and the
// platform see all; only the platform runs payouts.
func TestAccess(t *testing.T) {
	v1, v2, c1 := id("v"), id("v"), id("c")
	o := id("o")
	tier(t, v1, "gold")
	tier(t, v2, "gold")
	confirm(t, confirmed(o, c1, line("1", v1, 1, 10000, c1, 1000), line("2", v2, 1, 10000, "", 0)))
	deliver(t, o, v1)
	deliver(t, o, v2)
	waitStage(t, o, v2, payoutsv1.FundsStage_FUNDS_STAGE_PENDING)
	clk.Advance(8 * day)
	waitStage(t, o, v1, payoutsv1.FundsStage_FUNDS_STAGE_RELEASED)
	waitStage(t, o, v2, payoutsv1.FundsStage_FUNDS_STAGE_RELEASED)
	run, err := as(t, "platform").RunPayouts(t.Context(), &payoutsv1.RunPayoutsRequest{RequestId: id("run-")})
	if err != nil {
		t.Fatal(err)
	}
	batch := run.GetBatch().GetBatchId()

	vendor, other, creator := "vendor:"+v1, "vendor:"+v2, "creator:"+c1
	call := map[string]func(payoutsv1.PayoutsServiceClient) error{
		"own balance":      platformtest.Method(payoutsv1.PayoutsServiceClient.GetBalance, t.Context(), &payoutsv1.GetBalanceRequest{Owner: vendor}),
		"creator balance":  platformtest.Method(payoutsv1.PayoutsServiceClient.GetBalance, t.Context(), &payoutsv1.GetBalanceRequest{Owner: creator}),
		"platform balance": platformtest.Method(payoutsv1.PayoutsServiceClient.GetBalance, t.Context(), &payoutsv1.GetBalanceRequest{Owner: "platform"}),
		"own entries":      platformtest.Method(payoutsv1.PayoutsServiceClient.ListLedgerEntries, t.Context(), &payoutsv1.ListLedgerEntriesRequest{Account: vendor + ":available"}),
		"all entries":      platformtest.Method(payoutsv1.PayoutsServiceClient.ListLedgerEntries, t.Context(), &payoutsv1.ListLedgerEntriesRequest{}),
		"order entries":    platformtest.Method(payoutsv1.PayoutsServiceClient.ListLedgerEntries, t.Context(), &payoutsv1.ListLedgerEntriesRequest{OrderId: o}),
		"own statement":    platformtest.Method(payoutsv1.PayoutsServiceClient.GetStatement, t.Context(), &payoutsv1.GetStatementRequest{Account: vendor + ":reserve"}),
		"run": func(c payoutsv1.PayoutsServiceClient) error { // a fresh request each time
			_, err := c.RunPayouts(t.Context(), &payoutsv1.RunPayoutsRequest{RequestId: id("run-")})
			return err
		},
		"batch":      platformtest.Method(payoutsv1.PayoutsServiceClient.GetPayoutBatch, t.Context(), &payoutsv1.GetPayoutBatchRequest{BatchId: batch}),
		"settlement": platformtest.Method(payoutsv1.PayoutsServiceClient.GetOrderSettlement, t.Context(), &payoutsv1.GetOrderSettlementRequest{OrderId: o}),
	}
	ok, denied := codes.OK, codes.PermissionDenied
	tests := []struct {
		what string
		want map[string]codes.Code // role -> code
	}{
		{"own balance", map[string]codes.Code{vendor: ok, other: denied, creator: denied, "buyer:b1": denied, "support": ok, "platform": ok, "service": denied, "": codes.Unauthenticated}},
		{"creator balance", map[string]codes.Code{creator: ok, vendor: denied, "creator:" + v1: denied, "support": ok}},
		{"platform balance", map[string]codes.Code{vendor: denied, creator: denied, "support": ok, "platform": ok}},
		{"own entries", map[string]codes.Code{vendor: ok, other: denied, "support": ok, "carrier:k1": denied}},
		{"all entries", map[string]codes.Code{vendor: denied, creator: denied, "support": ok, "platform": ok}},
		{"order entries", map[string]codes.Code{vendor: denied, "support": ok}},
		{"own statement", map[string]codes.Code{vendor: ok, other: denied, "platform": ok}},
		{"run", map[string]codes.Code{"platform": ok, "support": denied, vendor: denied, "service": denied}},
		{"batch", map[string]codes.Code{vendor: ok, other: ok, creator: ok, "vendor:" + id("x"): denied, "support": ok, "buyer:b1": denied}},
		{"settlement", map[string]codes.Code{vendor: ok, other: ok, creator: denied, "vendor:" + id("x"): denied, "support": ok, "platform": ok}},
	}
	for _, tt := range tests {
		for role, want := range tt.want {
			t.Run(tt.what+" as "+role, func(t *testing.T) { platformtest.WantCode(t, call[tt.what](as(t, role)), want) })
		}
	}

	// What vendors see of shared resources is their own share.
	b, err := as(t, vendor).GetPayoutBatch(t.Context(), &payoutsv1.GetPayoutBatchRequest{BatchId: batch})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range b.GetBatch().GetLines() {
		if l.GetPayee() != vendor {
			t.Errorf("vendor sees %s's payout line", l.GetPayee())
		}
	}
	if paidTo(b.GetBatch(), vendor) != 8500 || len(b.GetBatch().GetTotals()) != 1 || b.GetBatch().GetTotals()[0].GetAmountMinor() != 8500 {
		t.Errorf("vendor's view of the batch %v", b.GetBatch())
	}
	s, err := as(t, other).GetOrderSettlement(t.Context(), &payoutsv1.GetOrderSettlementRequest{OrderId: o})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.GetSettlement().GetParts()) != 1 || s.GetSettlement().GetParts()[0].GetVendorId() != v2 || s.GetSettlement().GetTotal() != nil {
		t.Errorf("vendor's view of the settlement %v", s.GetSettlement())
	}
}

func TestValidation(t *testing.T) {
	c := as(t, "platform")
	tests := []struct {
		name  string
		call  func() error
		field string
	}{
		{"no owner", platformtest.Call(c.GetBalance, t.Context(), &payoutsv1.GetBalanceRequest{}), "owner"},
		{"bad owner", platformtest.Call(c.GetBalance, t.Context(), &payoutsv1.GetBalanceRequest{Owner: "bank:x"}), "owner"},
		{"owner without id", platformtest.Call(c.GetBalance, t.Context(), &payoutsv1.GetBalanceRequest{Owner: "vendor:"}), "owner"},
		{"bad account", platformtest.Call(c.ListLedgerEntries, t.Context(), &payoutsv1.ListLedgerEntriesRequest{Account: "vendor:v1:fees"}), "account"},
		{"bad order", platformtest.Call(c.ListLedgerEntries, t.Context(), &payoutsv1.ListLedgerEntriesRequest{OrderId: "o/1"}), "order_id"},
		{"negative page size", platformtest.Call(c.ListLedgerEntries, t.Context(), &payoutsv1.ListLedgerEntriesRequest{PageSize: -1}), "page_size"},
		{"foreign page token", platformtest.Call(c.ListLedgerEntries, t.Context(), &payoutsv1.ListLedgerEntriesRequest{PageToken: "garbage"}), "page_token"},
		{"no statement account", platformtest.Call(c.GetStatement, t.Context(), &payoutsv1.GetStatementRequest{}), "account"},
		{"period backwards", platformtest.Call(c.GetStatement, t.Context(), &payoutsv1.GetStatementRequest{Account: "platform:fees",
			StartTime: timestamppb.New(t0.Add(day)), EndTime: timestamppb.New(t0)}), "end_time"},
		{"no request id", platformtest.Call(c.RunPayouts, t.Context(), &payoutsv1.RunPayoutsRequest{}), "request_id"},
		{"no batch id", platformtest.Call(c.GetPayoutBatch, t.Context(), &payoutsv1.GetPayoutBatchRequest{}), "batch_id"},
		{"no order id", platformtest.Call(c.GetOrderSettlement, t.Context(), &payoutsv1.GetOrderSettlementRequest{}), "order_id"},
		{"request id not UTF-8", servertest.CallInvalidUTF8(c.RunPayouts, t.Context(), &payoutsv1.RunPayoutsRequest{RequestId: "r"}, "request_id"), "request_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.WantRefused(t, payouts.Name, tt.field, tt.call)
		})
	}
	for name, call := range map[string]func() error{
		"batch":      platformtest.Call(c.GetPayoutBatch, t.Context(), &payoutsv1.GetPayoutBatchRequest{BatchId: "bnope"}),
		"settlement": platformtest.Call(c.GetOrderSettlement, t.Context(), &payoutsv1.GetOrderSettlementRequest{OrderId: "onope"}),
	} {
		t.Run(name, func(t *testing.T) { platformtest.WantCode(t, call(), codes.NotFound) })
	}
}
