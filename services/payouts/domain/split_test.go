package domain_test

import (
	"math/rand/v2"
	"testing"

	"github.com/custody/custody/pkg/money"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	"github.com/custody/custody/services/payouts/domain"
)

// The rounding rule (split.go): commission and fee are floored, the vendor
// takes the remainder; the reserve is floored on the vendor's share.
func TestRoundingRule(t *testing.T) {
	tests := []struct {
		name                   string
		total, commBps, feeBps int64
		creator                bool
		comm, fee, vendor      int64
	}{
		{"one cent", 1, 1000, 500, true, 0, 0, 1},
		{"99 cents", 99, 1000, 500, true, 9, 4, 86},
		{"thirds", 3333, 333, 333, true, 110, 110, 3113},
		{"no creator, no commission", 3333, 333, 333, false, 0, 110, 3223},
		{"whole line to the creator", 10001, 10000, 0, true, 10001, 0, 0},
		{"one basis point", 9999, 1, 1, true, 0, 0, 9999},
		{"exact", 10000, 1000, 500, true, 1000, 500, 8500},
		{"large", 987654321, 1234, 567, true, 121876543, 56000000, 809777778},
		{"zero", 0, 1000, 500, true, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := domain.Line{Total: money.MustNew("EUR", tt.total), CommissionBps: tt.commBps, FeeBps: tt.feeBps}
			if tt.creator {
				l.CreatorID = "c1"
			}
			s := l.Original()
			if s.Commission.Minor != tt.comm || s.Fee.Minor != tt.fee || s.Vendor.Minor != tt.vendor {
				t.Fatalf("split %d = %d/%d/%d, want %d/%d/%d", tt.total, s.Commission.Minor, s.Fee.Minor, s.Vendor.Minor, tt.comm, tt.fee, tt.vendor)
			}
		})
	}
	for _, tt := range []struct{ share, bps, net, reserve int64 }{
		{86, 500, 82, 4}, {2650, 500, 2518, 132}, {1, 1500, 1, 0}, {19, 1500, 17, 2}, {1000, 0, 1000, 0}, {1000, 10000, 0, 1000},
	} {
		net, res := domain.ReserveOf(money.MustNew("EUR", tt.share), tt.bps)
		if net.Minor != tt.net || res.Minor != tt.reserve {
			t.Errorf("reserve %d bps of %d = %d + %d, want %d + %d", tt.bps, tt.share, net.Minor, res.Minor, tt.net, tt.reserve)
		}
	}
}

// Every split adds up, and no share of any unrefunded amount is negative:
// exhaustively for small amounts and every rate pair that may occur.
func TestSplitAlwaysAddsUp(t *testing.T) {
	rates := []int64{0, 1, 333, 500, 1000, 2500, 3333, 5000, 9999, 10000}
	for _, c := range rates {
		for _, f := range rates {
			l := domain.Line{CreatorID: "c1", CommissionBps: c, FeeBps: min(f, 10000-c)}
			for x := int64(0); x <= 300; x++ {
				s := l.SplitOf(money.MustNew("JPY", x))
				if s.Commission.Minor+s.Fee.Minor+s.Vendor.Minor != x || s.Commission.Minor < 0 || s.Fee.Minor < 0 || s.Vendor.Minor < 0 {
					t.Fatalf("rates %d/%d: split of %d = %+v", c, l.FeeBps, x, s)
				}
			}
		}
	}
}

// The split of every order — commissions, fees, reserves and vendors' nets
// at release — adds up exactly to the captured amount, for awkward amounts
// and rates in every supported minor unit.
func TestOrderSplitAddsUpToCaptured(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	awkward := []int64{0, 1, 2, 3, 7, 99, 101, 199, 333, 999, 1001, 3333, 9999, 12345, 99999, 1_000_003}
	rates := []int64{0, 1, 7, 333, 500, 1000, 1999, 3333, 9999, 10000}
	for i := range 2000 {
		cur := []string{"EUR", "JPY", "KWD"}[i%3]
		c := domain.Capture{Cause: domain.Cause{EventID: "e"}, BuyerID: "b", FeeBps: rates[rng.IntN(len(rates))], Time: t0, ConfirmTime: t0}
		var total int64
		for j := range 1 + rng.IntN(6) {
			amt := awkward[rng.IntN(len(awkward))]
			if rng.IntN(3) == 0 {
				amt = rng.Int64N(10_000_000)
			}
			cl := domain.CapturedLine{LineID: string(rune('a' + j)), VendorID: []string{"v1", "v2", "v3"}[rng.IntN(3)], Total: money.Money{Currency: cur, Minor: amt}}
			if rng.IntN(2) == 0 {
				cl.CreatorID, cl.CommissionBps = []string{"c1", "c2"}[rng.IntN(2)], rates[rng.IntN(len(rates))]
			}
			c.Lines = append(c.Lines, cl)
			total += amt
		}
		c.Total = money.Money{Currency: cur, Minor: total}
		l := domain.LedgerDecider.Initial("o")
		bal := domain.Balances{}
		evs, err := domain.DecideLedger(l, c)
		if err != nil {
			t.Fatal(err)
		}
		var captured int64
		for _, e := range evs {
			l = domain.EvolveLedger(l, e)
			if tx, ok := e.(*payoutsv1.TransactionPosted); ok {
				bal.Apply(tx)
			}
			if fe, ok := e.(*payoutsv1.FundsEscrowed); ok {
				for _, p := range fe.GetParts() {
					var sub int64
					for _, ls := range p.GetLines() {
						if ls.GetCommission().GetAmountMinor()+ls.GetFee().GetAmountMinor()+ls.GetVendorShare().GetAmountMinor() != ls.GetLineTotal().GetAmountMinor() {
							t.Fatalf("line split does not add up: %v", ls)
						}
						sub += ls.GetLineTotal().GetAmountMinor()
					}
					if p.GetCommission().GetAmountMinor()+p.GetFee().GetAmountMinor()+p.GetVendorShare().GetAmountMinor() != sub || p.GetSubtotal().GetAmountMinor() != sub {
						t.Fatalf("part split does not add up: %v", p)
					}
					captured += sub
				}
			}
		}
		if captured != total {
			t.Fatalf("parts add up to %d, captured %d", captured, total)
		}
		// Deliver and release every part at a random reserve rate: what
		// reaches vendors, reserves, creators and the platform is exactly
		// what was captured.
		for _, p := range l.Parts {
			for _, cmd := range []domain.Command{
				domain.Deliver{Cause: domain.Cause{EventID: "d"}, VendorID: p.VendorID, Window: day, Time: t0},
				domain.CloseWindow{Cause: domain.Cause{EventID: "w"}, VendorID: p.VendorID, Time: t0.Add(day),
					Release: domain.ReleaseTerms{Tier: "x", ReserveBps: rates[rng.IntN(len(rates))], ReserveHold: day}},
			} {
				evs, err := domain.DecideLedger(l, cmd)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range evs {
					l = domain.EvolveLedger(l, e)
					if tx, ok := e.(*payoutsv1.TransactionPosted); ok {
						bal.Apply(tx)
					}
				}
			}
		}
		var released int64
		for acct, byCur := range bal {
			a, _ := domain.ParseAccount(acct)
			switch {
			case a.Bucket == "available" || a.Bucket == "reserve" || a.Bucket == "fees":
				released += byCur[cur]
			case acct == domain.BuyerPayments:
				if byCur[cur] != -total {
					t.Fatalf("captured %d, want %d", -byCur[cur], total)
				}
			case byCur[cur] != 0:
				t.Fatalf("%s still holds %d after release", acct, byCur[cur])
			}
		}
		if released != total {
			t.Fatalf("released %d of %d captured", released, total)
		}
	}
}
