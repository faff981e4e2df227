package payouts_test

import (
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/apierr"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
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
	call := map[string]func(role string) error{
		"own balance": func(r string) error {
			_, err := as(t, r).GetBalance(t.Context(), &payoutsv1.GetBalanceRequest{Owner: vendor})
			return err
		},
		"creator balance": func(r string) error {
			_, err := as(t, r).GetBalance(t.Context(), &payoutsv1.GetBalanceRequest{Owner: creator})
			return err
		},
		"platform balance": func(r string) error {
			_, err := as(t, r).GetBalance(t.Context(), &payoutsv1.GetBalanceRequest{Owner: "platform"})
			return err
		},
		"own entries": func(r string) error {
			_, err := as(t, r).ListLedgerEntries(t.Context(), &payoutsv1.ListLedgerEntriesRequest{Account: vendor + ":available"})
			return err
		},
		"all entries": func(r string) error {
			_, err := as(t, r).ListLedgerEntries(t.Context(), &payoutsv1.ListLedgerEntriesRequest{})
			return err
		},
		"order entries": func(r string) error {
			_, err := as(t, r).ListLedgerEntries(t.Context(), &payoutsv1.ListLedgerEntriesRequest{OrderId: o})
			return err
		},
		"own statement": func(r string) error {
			_, err := as(t, r).GetStatement(t.Context(), &payoutsv1.GetStatementRequest{Account: vendor + ":reserve"})
			return err
		},
		"run": func(r string) error {
			_, err := as(t, r).RunPayouts(t.Context(), &payoutsv1.RunPayoutsRequest{RequestId: id("run-")})
			return err
		},
		"batch": func(r string) error {
			_, err := as(t, r).GetPayoutBatch(t.Context(), &payoutsv1.GetPayoutBatchRequest{BatchId: batch})
			return err
		},
		"settlement": func(r string) error {
			_, err := as(t, r).GetOrderSettlement(t.Context(), &payoutsv1.GetOrderSettlementRequest{OrderId: o})
			return err
		},
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
			if got := status.Code(call[tt.what](role)); got != want {
				t.Errorf("%s as %q: %v, want %v", tt.what, role, got, want)
			}
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
		{"no owner", func() error { _, err := c.GetBalance(t.Context(), &payoutsv1.GetBalanceRequest{}); return err }, "owner"},
		{"bad owner", func() error {
			_, err := c.GetBalance(t.Context(), &payoutsv1.GetBalanceRequest{Owner: "bank:x"})
			return err
		}, "owner"},
		{"owner without id", func() error {
			_, err := c.GetBalance(t.Context(), &payoutsv1.GetBalanceRequest{Owner: "vendor:"})
			return err
		}, "owner"},
		{"bad account", func() error {
			_, err := c.ListLedgerEntries(t.Context(), &payoutsv1.ListLedgerEntriesRequest{Account: "vendor:v1:fees"})
			return err
		}, "account"},
		{"bad order", func() error {
			_, err := c.ListLedgerEntries(t.Context(), &payoutsv1.ListLedgerEntriesRequest{OrderId: "o/1"})
			return err
		}, "order_id"},
		{"negative page size", func() error {
			_, err := c.ListLedgerEntries(t.Context(), &payoutsv1.ListLedgerEntriesRequest{PageSize: -1})
			return err
		}, "page_size"},
		{"foreign page token", func() error {
			_, err := c.ListLedgerEntries(t.Context(), &payoutsv1.ListLedgerEntriesRequest{PageToken: "garbage"})
			return err
		}, "page_token"},
		{"no statement account", func() error { _, err := c.GetStatement(t.Context(), &payoutsv1.GetStatementRequest{}); return err }, "account"},
		{"period backwards", func() error {
			_, err := c.GetStatement(t.Context(), &payoutsv1.GetStatementRequest{Account: "platform:fees",
				StartTime: timestamppb.New(t0.Add(day)), EndTime: timestamppb.New(t0)})
			return err
		}, "end_time"},
		{"no request id", func() error { _, err := c.RunPayouts(t.Context(), &payoutsv1.RunPayoutsRequest{}); return err }, "request_id"},
		{"no batch id", func() error { _, err := c.GetPayoutBatch(t.Context(), &payoutsv1.GetPayoutBatchRequest{}); return err }, "batch_id"},
		{"no order id", func() error {
			_, err := c.GetOrderSettlement(t.Context(), &payoutsv1.GetOrderSettlementRequest{})
			return err
		}, "order_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := ownPosition(t)
			err := tt.call()
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("err = %v, want InvalidArgument", err)
			}
			var fields []string
			for _, fv := range apierr.FieldViolations(err) {
				fields = append(fields, fv.Field)
			}
			if !slices.Contains(fields, tt.field) {
				t.Fatalf("violations %v (%v) do not name %s", fields, err, tt.field)
			}
			if ownPosition(t) != before {
				t.Fatal("a refused request wrote events")
			}
		})
	}
	for name, call := range map[string]func() error{
		"batch": func() error {
			_, err := c.GetPayoutBatch(t.Context(), &payoutsv1.GetPayoutBatchRequest{BatchId: "bnope"})
			return err
		},
		"settlement": func() error {
			_, err := c.GetOrderSettlement(t.Context(), &payoutsv1.GetOrderSettlementRequest{OrderId: "onope"})
			return err
		},
	} {
		if err := call(); status.Code(err) != codes.NotFound {
			t.Errorf("%s: %v, want NotFound", name, err)
		}
	}
}
