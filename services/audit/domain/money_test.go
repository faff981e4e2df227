package domain_test

import (
	"math"
	"testing"
	"time"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/money"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/audit/domain"
	payouts "github.com/custody/custody/services/payouts/domain"
)

// An order's money is summed with checked arithmetic: sums that would
// leave int64 are refused (payouts' ErrOverflow), never shown wrapped.
func TestMoneyOfRefusesOverflow(t *testing.T) {
	const max, min = math.MaxInt64, math.MinInt64
	l := payouts.Ledger{OrderID: "o1", Captured: true, Total: money.MustNew("EUR", 0)}
	eur := func(minor int64) map[string]int64 { return map[string]int64{"EUR": minor} }
	tests := []struct {
		name     string
		b        payouts.Balances
		overflow bool
		captured int64
		escrow   int64
	}{
		{"fits", payouts.Balances{payouts.BuyerPayments: eur(-max), "vendor:v1:escrow": eur(max - 1), "vendor:v2:escrow": eur(1)},
			false, max, max},
		// Captured is minus the payments' balance: -(2^63) does not fit.
		{"captured", payouts.Balances{payouts.BuyerPayments: eur(min), "vendor:v1:escrow": eur(max), "vendor:v2:escrow": eur(1)},
			true, 0, 0},
		{"escrow of two vendors", payouts.Balances{"vendor:v1:escrow": eur(max), "vendor:v2:escrow": eur(1)}, true, 0, 0},
		{"released", payouts.Balances{payouts.PlatformFees: eur(max), "vendor:v1:available": eur(max)}, true, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := domain.MoneyOf(l, tt.b)
			if tt.overflow {
				if !fault.IsA(err, payouts.ErrOverflow) || m != nil {
					t.Fatalf("MoneyOf = %+v, %v; want ErrOverflow", m, err)
				}
				return
			}
			if err != nil || m.Captured != tt.captured || m.Escrow != tt.escrow {
				t.Fatalf("MoneyOf = %+v, %v; want captured %d, escrow %d", m, err, tt.captured, tt.escrow)
			}
		})
	}
}

// A replay whose ledger transactions would overflow a balance says so
// (MoneyErr, which ReplayOrder answers) and shows no money.
func TestReplayRefusesOverflowingLedger(t *testing.T) {
	posted := func(id string, minor int64) es.Event {
		return es.Event{Payload: &payoutsv1.TransactionPosted{TransactionId: id, Postings: []*payoutsv1.Posting{
			{Account: payouts.BuyerPayments, Amount: &typev1.Money{CurrencyCode: "EUR", AmountMinor: -minor}},
			{Account: "vendor:v1:escrow", Amount: &typev1.Money{CurrencyCode: "EUR", AmountMinor: minor}},
		}}}
	}
	ok := domain.Replay("o1", time.Now(), domain.Histories{Ledger: []es.Event{posted("t1", 7499)}})
	if ok.MoneyErr != nil {
		t.Fatalf("a ledger that fits: %v", ok.MoneyErr)
	}
	snap := domain.Replay("o1", time.Now(), domain.Histories{Ledger: []es.Event{posted("t1", 7499), posted("t2", math.MaxInt64)}})
	if !fault.IsA(snap.MoneyErr, payouts.ErrOverflow) || snap.Money != nil {
		t.Fatalf("replay money %+v, error %v; want ErrOverflow", snap.Money, snap.MoneyErr)
	}
}
