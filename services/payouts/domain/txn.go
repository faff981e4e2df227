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
	err   error          // the first merge that overflowed
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
		a := b.t.Postings[i].Amount
		sum, ok := money.AddMinor(a.AmountMinor, minor)
		if !ok && b.err == nil {
			b.err = overflow("%s %s: postings of %d and %d %s on %s add up to more than int64 minor units",
				b.t.GetKind(), b.t.GetTransactionId(), a.AmountMinor, minor, currency, account)
		}
		a.AmountMinor = sum
		return
	}
	b.index[key] = len(b.t.Postings)
	b.t.Postings = append(b.t.Postings, &payoutsv1.Posting{Account: account, Amount: money.Money{Currency: currency, Minor: minor}.ToProto()})
}

// build returns the transaction, nil when nothing moves, ErrOverflow or
// ErrUnbalanced.
func (b *txnBuilder) build() (*payoutsv1.TransactionPosted, error) {
	if b.err != nil {
		return nil, b.err
	}
	kept := b.t.Postings[:0]
	for _, p := range b.t.Postings {
		if p.GetAmount().GetAmountMinor() != 0 { // merged postings may cancel out
			kept = append(kept, p)
		}
	}
	b.t.Postings = kept
	if err := CheckBalanced(b.t); err != nil {
		return nil, err
	}
	if len(kept) == 0 {
		return nil, nil
	}
	return b.t, nil
}

// CheckBalanced reports whether a transaction's postings sum to zero per
// currency: ErrUnbalanced if not, ErrOverflow if their running sum leaves
// int64 (then they cannot balance as stored).
func CheckBalanced(t *payoutsv1.TransactionPosted) error {
	sums := map[string]int64{}
	for _, p := range t.GetPostings() {
		c, amt := p.GetAmount().GetCurrencyCode(), p.GetAmount().GetAmountMinor()
		s, ok := money.AddMinor(sums[c], amt)
		if !ok {
			return overflow("%s %s: its postings in %s add up to more than int64 minor units", t.GetKind(), t.GetTransactionId(), c)
		}
		sums[c] = s
	}
	for c, s := range sums {
		if s != 0 {
			return fmt.Errorf("%w: %s %s sums to %d %s", ErrUnbalanced, t.GetKind(), t.GetTransactionId(), s, c)
		}
	}
	return nil
}
