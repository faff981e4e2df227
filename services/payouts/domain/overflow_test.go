package domain_test

import (
	"maps"
	"math"
	"testing"

	"github.com/custody/custody/pkg/fault"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	"github.com/custody/custody/services/payouts/domain"
)

// txn is a transaction of postings "account" -> EUR minor units, in order.
func txn(id string, postings ...any) *payoutsv1.TransactionPosted {
	t := &payoutsv1.TransactionPosted{TransactionId: id, Kind: payoutsv1.TransactionKind_TRANSACTION_KIND_CAPTURE}
	for i := 0; i < len(postings); i += 2 {
		t.Postings = append(t.Postings, &payoutsv1.Posting{Account: postings[i].(string), Amount: eur(postings[i+1].(int64)).ToProto()})
	}
	return t
}

// A running balance that would leave int64 refuses the whole transaction
// and changes no balance, not even those the transaction touched first.
func TestBalancesRefuseOverflow(t *testing.T) {
	const max, min = math.MaxInt64, math.MinInt64
	escrow := domain.VendorAccount("v1", domain.Escrow)
	tests := []struct {
		name     string
		start    domain.Balances
		t        *payoutsv1.TransactionPosted
		overflow bool
		want     domain.Balances // when applied
	}{
		{name: "fits", start: domain.Balances{escrow: {"EUR": 100}},
			t:    txn("t1", domain.BuyerPayments, int64(-50), escrow, int64(50)),
			want: domain.Balances{escrow: {"EUR": 150}, domain.BuyerPayments: {"EUR": -50}}},
		{name: "up to the limit", start: domain.Balances{escrow: {"EUR": max - 50}, domain.BuyerPayments: {"EUR": min + 50}},
			t:    txn("t2", domain.BuyerPayments, int64(-50), escrow, int64(50)),
			want: domain.Balances{escrow: {"EUR": max}, domain.BuyerPayments: {"EUR": min}}},
		// The report: a capture at 2^63-1 on an escrow that held 7,499.
		{name: "escrow past the limit", start: domain.Balances{escrow: {"EUR": 7499}},
			t: txn("t3", domain.BuyerPayments, int64(-max), escrow, int64(max)), overflow: true},
		{name: "payments past the limit", start: domain.Balances{domain.BuyerPayments: {"EUR": -2}},
			t: txn("t4", domain.BuyerPayments, int64(-max), escrow, int64(max)), overflow: true},
		{name: "the same account twice", start: domain.Balances{},
			t: txn("t5", escrow, int64(max), escrow, int64(1), domain.BuyerPayments, int64(-max), domain.BuyerPayments, int64(-1)), overflow: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := clone(tt.start)
			err := b.Apply(tt.t)
			if tt.overflow {
				if !fault.IsA(err, domain.ErrOverflow) {
					t.Fatalf("Apply = %v, want ErrOverflow", err)
				}
				if !equal(b, tt.start) {
					t.Fatalf("a refused transaction changed the balances: %v, was %v", b, tt.start)
				}
				return
			}
			if err != nil || !equal(b, tt.want) {
				t.Fatalf("Apply = %v, balances %v; want %v", err, b, tt.want)
			}
		})
	}
}

// The sum of a transaction's postings is checked as well: postings whose
// sum would leave int64 are refused, not taken as balanced after wrapping.
func TestCheckBalancedOverflow(t *testing.T) {
	tests := []struct {
		name     string
		t        *payoutsv1.TransactionPosted
		overflow bool
	}{
		{"balanced", txn("t1", "a", int64(math.MaxInt64), "b", int64(-math.MaxInt64)), false},
		// MaxInt64 + MaxInt64 + 2 wraps to 0: it would look balanced.
		{"wraps to zero", txn("t2", "a", int64(math.MaxInt64), "b", int64(math.MaxInt64), "c", int64(2)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := domain.CheckBalanced(tt.t)
			if got := fault.IsA(err, domain.ErrOverflow); got != tt.overflow || (!tt.overflow && err != nil) {
				t.Fatalf("CheckBalanced = %v, want overflow %v", err, tt.overflow)
			}
		})
	}
}

// A payout run whose amounts would overflow decides nothing.
func TestPayoutRunOverflow(t *testing.T) {
	paid := domain.EvolvePayouts(domain.Payouts{}, &payoutsv1.PayoutBatchCreated{BatchId: "b0", RequestId: "r0",
		Lines: []*payoutsv1.PayoutLine{{Payee: "vendor:v3", Account: "vendor:v3:available", Amount: eur(math.MaxInt64).ToProto()}}})
	tests := []struct {
		name     string
		s        domain.Payouts
		credited map[string]map[string]int64
	}{
		{"batch total", domain.Payouts{}, map[string]map[string]int64{
			"vendor:v1:available": {"EUR": math.MaxInt64 / 2},
			"vendor:v2:available": {"EUR": math.MaxInt64/2 + 2},
		}},
		// Paid 2^63-1 once, then clawed back below zero: what is due
		// (credited − paid) does not fit.
		{"due", paid, map[string]map[string]int64{"vendor:v3:available": {"EUR": -2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := domain.DecidePayouts(tt.s, run("r1", tt.credited))
			if !fault.IsA(err, domain.ErrOverflow) || evs != nil {
				t.Fatalf("DecidePayouts = %v, %v; want ErrOverflow and nothing", evs, err)
			}
		})
	}
}

func clone(b domain.Balances) domain.Balances {
	out := domain.Balances{}
	for a, m := range b {
		out[a] = maps.Clone(m)
	}
	return out
}

// equal compares balances, a zero balance counting as absent.
func equal(a, b domain.Balances) bool {
	nonzero := func(x domain.Balances) map[string]int64 {
		out := map[string]int64{}
		for acct, m := range x {
			for cur, v := range m {
				if v != 0 {
					out[acct+"|"+cur] = v
				}
			}
		}
		return out
	}
	return maps.Equal(nonzero(a), nonzero(b))
}
