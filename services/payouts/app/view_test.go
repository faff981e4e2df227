package app_test

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/payouts/app"
	"github.com/custody/custody/services/payouts/domain"
)

// viewOf folds transactions — each a kind and its postings, "account",
// EUR minor units, … — into a new read side, at positions 1, 2, 3, ….
func viewOf(t *testing.T, txns ...[]any) *app.LedgerView {
	t.Helper()
	v := newLedgerView(t, nil, slog.New(slog.DiscardHandler))
	for i, tx := range txns {
		posted := &payoutsv1.TransactionPosted{TransactionId: fmt.Sprint("t", i), Kind: tx[0].(payoutsv1.TransactionKind)}
		for j := 1; j < len(tx); j += 2 {
			posted.Postings = append(posted.Postings, &payoutsv1.Posting{Account: tx[j].(string),
				Amount: &typev1.Money{CurrencyCode: "EUR", AmountMinor: tx[j+1].(int64)}})
		}
		ed, err := es.Encode(posted)
		if err != nil {
			t.Fatal(err)
		}
		ed.ID = posted.TransactionId
		v.Apply(eventstore.RecordedEvent{EventData: ed, Position: uint64(i + 1)})
	}
	return v
}

const (
	capture = payoutsv1.TransactionKind_TRANSACTION_KIND_CAPTURE
	payout  = payoutsv1.TransactionKind_TRANSACTION_KIND_PAYOUT
)

// A transaction that would take a balance — or what a payable account was
// credited or paid — beyond int64 is not folded in at all, and the read
// side then refuses to be read (Err) rather than show a wrapped balance or
// one that leaves a stored transaction out.
func TestLedgerViewRefusesOverflow(t *testing.T) {
	const max = math.MaxInt64
	escrow, avail := "vendor:v1:escrow", "vendor:v1:available"
	tests := []struct {
		name    string
		txns    [][]any
		refused bool
		want    map[string]int64 // EUR balances after, without the refused transaction
	}{
		{"fits", [][]any{
			{capture, domain.BuyerPayments, int64(-7499), escrow, int64(7499)},
		}, false, map[string]int64{domain.BuyerPayments: -7499, escrow: 7499}},
		// The report: 74.99 in escrow, then a capture of 2^63-1.
		{"escrow balance", [][]any{
			{capture, domain.BuyerPayments, int64(-7499), escrow, int64(7499)},
			{capture, domain.BuyerPayments, int64(-max), escrow, int64(max)},
		}, true, map[string]int64{domain.BuyerPayments: -7499, escrow: 7499}},
		// Credited 2^63-1 and paid it, then credited more: the balance
		// fits, what the account was credited in all does not.
		{"credited", [][]any{
			{capture, domain.PlatformFees, int64(-max), avail, int64(max)},
			{payout, avail, int64(-max), domain.PayoutsSent, int64(max)},
			{capture, domain.PlatformFees, int64(-5), avail, int64(5)},
		}, true, map[string]int64{domain.PlatformFees: -max, avail: 0, domain.PayoutsSent: max}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := viewOf(t, tt.txns...)
			if err := v.Err(); tt.refused != fault.IsA(err, domain.ErrOverflow) || (!tt.refused && err != nil) {
				t.Fatalf("Err() = %v, want refused %v", err, tt.refused)
			}
			bal := v.Balances()
			for acct, want := range tt.want {
				if got := bal.Of(acct, "EUR"); got != want {
					t.Errorf("%s = %d, want %d", acct, got, want)
				}
			}
			applied := len(tt.txns)
			if tt.refused {
				applied--
			}
			entries, _ := v.Entries(app.EntryFilter{}, -1, 100)
			if len(entries) != 2*applied {
				t.Errorf("%d entries, want %d", len(entries), 2*applied)
			}
			if c := v.Credited()[avail]["EUR"]; c < 0 {
				t.Errorf("credited %d: wrapped", c)
			}
		})
	}
}

// A statement's credits (or debits) over a long period may exceed int64
// where the balance does not: it asks for a shorter period, naming
// start_time, instead of summing wrong.
func TestStatementRefusesOverflow(t *testing.T) {
	const max = math.MaxInt64
	escrow := "vendor:v1:escrow"
	v := viewOf(t,
		[]any{capture, domain.BuyerPayments, int64(-max), escrow, int64(max)},
		[]any{capture, escrow, int64(-max), domain.BuyerRefunds, int64(max)},
		[]any{capture, "vendor:v2:escrow", int64(-10), escrow, int64(10)},
	)
	if err := v.Err(); err != nil {
		t.Fatalf("every balance fits, yet Err() = %v", err)
	}
	_, _, err := v.Statement(escrow, time.Time{}, time.Unix(1<<40, 0))
	var invalid *fault.InvalidError
	if !errors.As(err, &invalid) || invalid.Violations[0].Field != "start_time" {
		t.Fatalf("statement error %v, want a violation of start_time", err)
	}
	// Another account's statement is answered as usual.
	entries, totals, err := v.Statement("vendor:v2:escrow", time.Time{}, time.Unix(1<<40, 0))
	if err != nil || len(entries) != 1 || len(totals) != 1 || totals[0].Debits != -10 || totals[0].Closing != -10 {
		t.Fatalf("statement of v2: %v %v %v", entries, totals, err)
	}
}
