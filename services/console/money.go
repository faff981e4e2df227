package console

import (
	"strings"

	"github.com/custody/custody/pkg/money"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// partyMoney is what an order's money did for one party, summed from the
// ledger's entries of the order (double entry: every movement is a debit
// of one account and a credit of another).
type partyMoney struct {
	Party string // "vendor v1", "creator lea", "platform", "buyer"
	// Captured: what the buyer paid into this party's escrow (for the
	// buyer: what was paid).
	Captured money.Money
	// Escrow: what is in the party's escrow now.
	Escrow money.Money
	// Released: what the return window's close (and the reserve's end)
	// made the party's to keep.
	Released money.Money
	// Refunded: what refunds and cancellations before the release took
	// from the party (for the buyer: what came back).
	Refunded money.Money
	// ClawedBack: what refunds after the release took back.
	ClawedBack money.Money
	// Net: all the order left with the party, in every bucket (for the
	// buyer: what it paid, less what came back).
	Net money.Money
}

// moneyByParty sums the entries per party, in the order parties first
// appear; payouts:sent (payout runs, not about one order) is left out.
func moneyByParty(entries []*payoutsv1.LedgerEntry) []partyMoney {
	var out []partyMoney
	index := map[string]int{}
	for _, e := range entries {
		party, bucket, ok := partyOf(e.GetAccount())
		if !ok {
			continue
		}
		i, seen := index[party]
		if !seen {
			i = len(out)
			index[party] = i
			zero := money.Money{Currency: e.GetAmount().GetCurrencyCode()}
			out = append(out, partyMoney{Party: party, Captured: zero, Escrow: zero, Released: zero, Refunded: zero, ClawedBack: zero, Net: zero})
		}
		p := &out[i]
		amount := e.GetAmount().GetAmountMinor()
		if party == "buyer" { // the buyer's side of the books runs the other way
			amount = -amount
		}
		add := func(m *money.Money, v int64) { m.Minor += v }
		switch e.GetKind() {
		case payoutsv1.TransactionKind_TRANSACTION_KIND_CAPTURE:
			add(&p.Captured, amount)
		case payoutsv1.TransactionKind_TRANSACTION_KIND_RELEASE, payoutsv1.TransactionKind_TRANSACTION_KIND_RESERVE_RELEASE:
			if bucket == "available" || bucket == "reserve" || bucket == "fees" {
				add(&p.Released, e.GetAmount().GetAmountMinor())
			}
		case payoutsv1.TransactionKind_TRANSACTION_KIND_REFUND, payoutsv1.TransactionKind_TRANSACTION_KIND_CANCELLATION:
			add(&p.Refunded, -amount)
		case payoutsv1.TransactionKind_TRANSACTION_KIND_CLAWBACK:
			if party == "buyer" { // a refund after the release, to the buyer
				add(&p.Refunded, -amount)
			} else {
				add(&p.ClawedBack, -amount)
			}
		}
		if bucket == "escrow" {
			add(&p.Escrow, amount)
		}
		add(&p.Net, amount)
	}
	return out
}

// partyOf names the owner of an account and its bucket:
// "vendor:v1:escrow" is ("vendor v1", "escrow"), "platform:fees" is
// ("platform", "fees"), "buyers:refunds" is ("buyer", "refunds").
func partyOf(account string) (party, bucket string, ok bool) {
	parts := strings.Split(account, ":")
	switch {
	case len(parts) == 3 && (parts[0] == "vendor" || parts[0] == "creator"):
		return parts[0] + " " + parts[1], parts[2], true
	case len(parts) == 2 && parts[0] == "platform":
		return "platform", parts[1], true
	case len(parts) == 2 && parts[0] == "buyers":
		return "buyer", parts[1], true
	}
	return "", "", false
}

// moneyOf is m as the templates' money helper takes it.
func moneyOf(m money.Money) *typev1.Money { return m.ToProto() }
