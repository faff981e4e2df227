package console

import (
	"testing"

	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

func TestMoneyByPartyAddsUp(t *testing.T) {
	type k = payoutsv1.TransactionKind
	const (
		capture  = payoutsv1.TransactionKind_TRANSACTION_KIND_CAPTURE
		delivery = payoutsv1.TransactionKind_TRANSACTION_KIND_DELIVERY
		release  = payoutsv1.TransactionKind_TRANSACTION_KIND_RELEASE
		refund   = payoutsv1.TransactionKind_TRANSACTION_KIND_REFUND
		clawback = payoutsv1.TransactionKind_TRANSACTION_KIND_CLAWBACK
	)
	var entries []*payoutsv1.LedgerEntry
	post := func(kind k, postings ...any) {
		for i := 0; i < len(postings); i += 2 {
			entries = append(entries, &payoutsv1.LedgerEntry{Kind: kind, Account: postings[i].(string),
				Amount: &typev1.Money{CurrencyCode: "EUR", AmountMinor: int64(postings[i+1].(int))}})
		}
	}
	// Two vendors: v1's part is delivered, released, then refunded 10.00
	// after the release; v2's part is refunded 5.00 out of escrow.
	post(capture, "buyers:payments", -2500, "vendor:v1:escrow", 2500)
	post(capture, "buyers:payments", -800, "vendor:v2:escrow", 800)
	post(delivery, "vendor:v1:escrow", -2500, "vendor:v1:pending", 2250, "creator:lea:pending", 125, "platform:pending", 125)
	post(refund, "vendor:v2:escrow", -500, "buyers:refunds", 500)
	post(release, "vendor:v1:pending", -2250, "vendor:v1:available", 2250, "creator:lea:pending", -125, "creator:lea:available", 125,
		"platform:pending", -125, "platform:fees", 125)
	post(clawback, "vendor:v1:available", -900, "creator:lea:available", -50, "platform:fees", -50, "buyers:refunds", 1000)
	post(payoutsv1.TransactionKind_TRANSACTION_KIND_PAYOUT, "payouts:sent", 999) // not about one order's parties

	type row struct{ captured, escrow, released, refunded, clawed, net int64 }
	want := map[string]row{
		"buyer":       {captured: 3300, refunded: 1500, net: 1800},
		"vendor v1":   {captured: 2500, released: 2250, clawed: 900, net: 1350},
		"vendor v2":   {captured: 800, escrow: 300, refunded: 500, net: 300},
		"creator lea": {released: 125, clawed: 50, net: 75},
		"platform":    {released: 125, clawed: 50, net: 75},
	}
	got := moneyByParty(entries)
	if len(got) != len(want) {
		t.Fatalf("%d parties, want %d: %+v", len(got), len(want), got)
	}
	if got[0].Party != "buyer" || got[1].Party != "vendor v1" {
		t.Errorf("parties not in the order they appear: %s, %s", got[0].Party, got[1].Party)
	}
	var kept int64
	for _, p := range got {
		w, ok := want[p.Party]
		g := row{p.Captured.Minor, p.Escrow.Minor, p.Released.Minor, p.Refunded.Minor, p.ClawedBack.Minor, p.Net.Minor}
		if !ok || g != w {
			t.Errorf("%s = %+v, want %+v", p.Party, g, w)
		}
		if p.Net.Currency != "EUR" {
			t.Errorf("%s in %q", p.Party, p.Net.Currency)
		}
		if p.Party != "buyer" {
			kept += p.Net.Minor
		}
	}
	// Double entry: what the parties keep is what the buyer paid, net of refunds.
	if kept != want["buyer"].net {
		t.Errorf("the parties keep %d, the buyer is out %d", kept, want["buyer"].net)
	}
}
