package domain

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/money"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
)

// Cause is what made money move: another service's event (its id and proto
// type), a deadline ("deadline:return_window") or a request
// ("rpc:RunPayouts" and its request id).
type Cause struct {
	EventID string
	Type    string
}

// Cause types that are not events.
const (
	CauseReturnWindow = "deadline:return_window"
	CauseReserveHold  = "deadline:reserve_hold"
	CauseRunPayouts   = "rpc:RunPayouts"
)

// TransactionID derives a transaction id from the cause's identity (kind,
// order or batch, and refund, claim or vendor part): the same cause always
// names the same transaction.
func TransactionID(kind payoutsv1.TransactionKind, parts ...string) string {
	return es.DeriveID(append([]string{"txn", kind.String()}, parts...)...)
}

// txnBuilder collects postings for one transaction.
type txnBuilder struct {
	t     *payoutsv1.TransactionPosted
	index map[string]int // account|currency -> posting
}

func newTxn(kind payoutsv1.TransactionKind, id, orderID, vendorID string, cause Cause, ref string, at time.Time, memo string, args ...any) *txnBuilder {
	return &txnBuilder{t: &payoutsv1.TransactionPosted{
		TransactionId: id, Kind: kind, OrderId: orderID, VendorId: vendorID,
		CauseEventId: cause.EventID, CauseType: cause.Type, Reference: ref,
		Memo: fmt.Sprintf(memo, args...), PostTime: timestamppb.New(at),
	}, index: map[string]int{}}
}

// add posts minor units of currency on account (merging with an earlier
// posting on the same account); zero adds nothing.
func (b *txnBuilder) add(account, currency string, minor int64) {
	if minor == 0 {
		return
	}
	key := account + "|" + currency
	if i, ok := b.index[key]; ok {
		b.t.Postings[i].Amount.AmountMinor += minor
		return
	}
	b.index[key] = len(b.t.Postings)
	b.t.Postings = append(b.t.Postings, &payoutsv1.Posting{Account: account, Amount: money.Money{Currency: currency, Minor: minor}.ToProto()})
}

// build returns the transaction, nil when nothing moves, or ErrUnbalanced.
func (b *txnBuilder) build() (*payoutsv1.TransactionPosted, error) {
	kept := b.t.Postings[:0]
	sums := map[string]int64{}
	for _, p := range b.t.Postings {
		if p.GetAmount().GetAmountMinor() != 0 { // merged postings may cancel out
			kept = append(kept, p)
			sums[p.GetAmount().GetCurrencyCode()] += p.GetAmount().GetAmountMinor()
		}
	}
	b.t.Postings = kept
	for c, s := range sums {
		if s != 0 {
			return nil, fmt.Errorf("%w: %s %s sums to %d %s", ErrUnbalanced, b.t.GetKind(), b.t.GetTransactionId(), s, c)
		}
	}
	if len(kept) == 0 {
		return nil, nil
	}
	return b.t, nil
}

// CheckBalanced reports whether a transaction's postings sum to zero per
// currency.
func CheckBalanced(t *payoutsv1.TransactionPosted) error {
	sums := map[string]int64{}
	for _, p := range t.GetPostings() {
		sums[p.GetAmount().GetCurrencyCode()] += p.GetAmount().GetAmountMinor()
	}
	for c, s := range sums {
		if s != 0 {
			return fmt.Errorf("%w: %s sums to %d %s", ErrUnbalanced, t.GetTransactionId(), s, c)
		}
	}
	return nil
}
