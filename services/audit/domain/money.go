package domain

import (
	"maps"
	"slices"
	"time"

	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/money"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	payouts "github.com/custody/custody/services/payouts/domain"
)

// Money is where an order's money was, from the payouts ledger's
// transactions of the order (amounts in minor units of Currency). Every
// transaction sums to zero, so Captured = Escrow + Pending + Held +
// Released + Refunded.
type Money struct {
	Currency string
	// Captured from the buyer (minus the buyers:payments balance).
	Captured int64
	// Escrow: vendors' escrow accounts (captured, not delivered).
	Escrow int64
	// Pending: the vendor, creator and platform pending shares of delivered
	// parts in their return window.
	Pending int64
	// Held: vendors' shares held while a claim is open.
	Held int64
	// Released: vendors' available and reserve, creators' available and
	// the platform's fees (net of clawbacks).
	Released int64
	// Refunded: returned to the buyer.
	Refunded int64
	Parts    []PartMoney
	// Accounts are every account the transactions touched, sorted.
	Accounts []AccountAmount
}

// PartMoney is where one vendor part's money was (payouts' Part.Stage).
type PartMoney struct {
	VendorID   string
	Stage      payoutsv1.FundsStage
	OpenClaims []string
	// CloseTime is when its return window closes (zero before delivery).
	CloseTime time.Time
	Refunded  int64
}

// AccountAmount is an account's balance from the order's transactions.
type AccountAmount struct {
	Account string
	Minor   int64
}

// MoneyOf sums an order's ledger (payouts' LedgerDecider fold) and the
// balances of its transactions (payouts' Balances fold). Nil when nothing
// was captured. The sums are checked: one that would leave int64 (only a
// ledger from before order totals were bounded, or a damaged one, comes
// near) is payouts' ErrOverflow, never a wrapped amount.
func MoneyOf(l payouts.Ledger, b payouts.Balances) (*Money, error) {
	if !l.Captured {
		return nil, nil
	}
	cur := l.Currency()
	m := &Money{Currency: cur}
	for _, acct := range slices.Sorted(maps.Keys(b)) {
		amt := b.Of(acct, cur)
		m.Accounts = append(m.Accounts, AccountAmount{Account: acct, Minor: amt})
		var sum *int64
		switch acct {
		case payouts.BuyerPayments:
			sum = &m.Captured
			var ok bool
			if amt, ok = money.SubMinor(0, amt); !ok { // captured is minus the payments' balance
				return nil, overflow(l.OrderID, acct)
			}
		case payouts.BuyerRefunds:
			sum = &m.Refunded
		case payouts.PlatformFees:
			sum = &m.Released
		default:
			a, err := payouts.ParseAccount(acct)
			if err != nil {
				continue // not an account the ledger names; shown, not summed
			}
			switch payouts.Bucket(a.Bucket) {
			case payouts.Escrow:
				sum = &m.Escrow
			case payouts.Pending:
				sum = &m.Pending
			case payouts.Held:
				sum = &m.Held
			case payouts.Available, payouts.Reserve:
				sum = &m.Released
			default:
				continue
			}
		}
		var ok bool
		if *sum, ok = money.AddMinor(*sum, amt); !ok {
			return nil, overflow(l.OrderID, acct)
		}
	}
	for _, p := range l.Parts {
		// A part's refunds are at most what its lines captured, which
		// Captured (checked above, at most money.MaxAmount when booked)
		// bounds.
		m.Parts = append(m.Parts, PartMoney{VendorID: p.VendorID, Stage: p.Stage(), OpenClaims: p.OpenClaims(),
			CloseTime: p.CloseTime, Refunded: p.Refunded(cur).Minor})
	}
	return m, nil
}

// overflow is payouts' ErrOverflow for an order whose sums leave int64.
func overflow(orderID, account string) error {
	return fault.Precondition(payouts.ErrOverflow.Reason, "order %s: its money, summed with %s, exceeds int64 minor units", orderID, account)
}
