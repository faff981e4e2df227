package domain

import (
	"slices"

	"github.com/custody/custody/pkg/money"
)

// Rounding rule (tested in split_test.go):
//
//   - Per line: commission = floor(line_total × commission_bps / 10000)
//     (only when the line names a creator), fee = floor(line_total ×
//     fee_bps / 10000), vendor share = line_total − commission − fee. The
//     vendor's share takes every remainder, so the three add up to the line
//     exactly. commission_bps + fee_bps never exceeds 10000 (the fee yields).
//   - Per vendor part: the sums of its lines. Per order: the sum of its
//     parts is the captured total.
//   - At release: reserve = floor(vendor share × reserve_bps / 10000),
//     vendor net = vendor share − reserve.
//   - Refunds: a party's share of a line is always the split of the line's
//     unrefunded amount; a refund moves every party from the split before
//     to the split after. So a refund of r reverses exactly r in total, a
//     full refund in any number of steps reverses exactly the original
//     split, and no share is ever negative.
//
// "floor" truncates toward zero (money.BasisPoints); amounts here are never
// negative. Every sum here is of one order's lines, so at most its captured
// total, which capture bounds by money.MaxAmount: none can overflow.

// Line is an order line as the ledger books it.
type Line struct {
	ID        string
	CreatorID string // empty: no commission
	Total     money.Money
	// CommissionBps is the rate fixed on the link (0 without a creator).
	CommissionBps int64
	// FeeBps is the platform's merchant fee rate, fixed at capture.
	FeeBps int64
	// Refunded is what was refunded on the line so far.
	Refunded money.Money
}

// Split is how an amount divides between the parties.
type Split struct {
	Commission, Fee, Vendor money.Money
}

// SplitOf splits x (0 <= x) of the line: commission and fee floored, the
// vendor's share the rest.
func (l Line) SplitOf(x money.Money) Split {
	s := Split{Commission: money.Money{Currency: x.Currency}}
	if l.CreatorID != "" {
		s.Commission, _ = money.BasisPoints(x, l.CommissionBps) // rates validated at capture
	}
	s.Fee, _ = money.BasisPoints(x, l.FeeBps)
	s.Vendor = money.Money{Currency: x.Currency, Minor: x.Minor - s.Commission.Minor - s.Fee.Minor}
	return s
}

// Unrefunded is the part of the line not refunded.
func (l Line) Unrefunded() money.Money {
	return money.Money{Currency: l.Total.Currency, Minor: l.Total.Minor - l.Refunded.Minor}
}

// Current is the split of the unrefunded amount: what each party holds of
// the line now.
func (l Line) Current() Split { return l.SplitOf(l.Unrefunded()) }

// Original is the split of the whole line, as fixed at capture.
func (l Line) Original() Split { return l.SplitOf(l.Total) }

// Shares sums what each party holds of a set of lines.
type Shares struct {
	Currency string
	// Gross is the unrefunded amount.
	Gross  int64
	Vendor int64
	Fee    int64
	// Commissions per creator.
	Commissions map[string]int64
}

// SharesOf sums the current splits of lines.
func SharesOf(currency string, lines []Line) Shares {
	s := Shares{Currency: currency, Commissions: map[string]int64{}}
	for _, l := range lines {
		c := l.Current()
		s.Gross += l.Unrefunded().Minor
		s.Vendor += c.Vendor.Minor
		s.Fee += c.Fee.Minor
		if l.CreatorID != "" {
			s.Commissions[l.CreatorID] += c.Commission.Minor
		}
	}
	return s
}

// Creators returns the creators with a commission entry, sorted.
func (s Shares) Creators() []string {
	out := make([]string, 0, len(s.Commissions))
	for c := range s.Commissions {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// ReserveOf splits a vendor share into net and reserve at reserveBps.
func ReserveOf(vendorShare money.Money, reserveBps int64) (net, reserve money.Money) {
	reserve, _ = money.BasisPoints(vendorShare, reserveBps) // validated by Policy
	return money.Money{Currency: vendorShare.Currency, Minor: vendorShare.Minor - reserve.Minor}, reserve
}
