package domain_test

import (
	"testing"

	"github.com/custody/custody/services/payouts/domain"
)

func TestAccounts(t *testing.T) {
	good := map[string]domain.Account{
		"vendor:v1:available":  {Kind: "vendor", ID: "v1", Bucket: "available"},
		"vendor:v.1-x:escrow":  {Kind: "vendor", ID: "v.1-x", Bucket: "escrow"},
		"creator:c1:pending":   {Kind: "creator", ID: "c1", Bucket: "pending"},
		domain.PlatformFees:    {Kind: "platform", Bucket: "fees"},
		domain.BuyerPayments:   {Kind: "buyers", Bucket: "payments"},
		domain.PayoutsSent:     {Kind: "payouts", Bucket: "sent"},
		domain.PlatformPending: {Kind: "platform", Bucket: "pending"},
	}
	for s, want := range good {
		a, err := domain.ParseAccount(s)
		if err != nil || a != want || a.String() != s {
			t.Errorf("ParseAccount(%q) = %+v, %v", s, a, err)
		}
	}
	for _, s := range []string{"", "vendor", "vendor:v1", "vendor::available", "creator:c1:held", "platform:x:fees", "bank:x:y", "vendor:v 1:available", "payouts:fees"} {
		if _, err := domain.ParseAccount(s); err == nil {
			t.Errorf("ParseAccount(%q) accepted", s)
		}
	}
	if !domain.Payable("creator:c1:available") || domain.Payable("platform:fees") || domain.Payable("vendor:v1:reserve") {
		t.Error("Payable")
	}
	if k, id, err := domain.ParseOwner("vendor:v1"); err != nil || k != "vendor" || id != "v1" {
		t.Errorf("ParseOwner: %s %s %v", k, id, err)
	}
	for _, s := range []string{"vendor", "platform:x", "someone"} {
		if _, _, err := domain.ParseOwner(s); err == nil {
			t.Errorf("ParseOwner(%q) accepted", s)
		}
	}
}

func TestPolicy(t *testing.T) {
	p := domain.DefaultPolicy()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"gold": "gold", " Watch ": "watch", "": "standard", "platinum": "standard"} {
		if got, _ := p.Tier(name); got != want {
			t.Errorf("Tier(%q) = %s, want %s", name, got, want)
		}
	}
	if _, tp := p.Tier("watch"); tp.WindowExtension != 7*day || tp.ReserveBps != 1500 {
		t.Errorf("watch tier %+v", tp)
	}
	bad := []func(*domain.Policy){
		func(p *domain.Policy) { p.PlatformFeeBps = 10001 },
		func(p *domain.Policy) { p.ReserveHold = -1 },
		func(p *domain.Policy) { p.ReturnWindow = -1 },
		func(p *domain.Policy) { delete(p.Tiers, domain.TierStandard) },
		func(p *domain.Policy) { p.Tiers["gold"] = domain.TierPolicy{ReserveBps: -1} },
		func(p *domain.Policy) { p.MinPayout.PerCurrency = map[string]int64{"XYZ": 1} },
	}
	for i, f := range bad {
		p := domain.DefaultPolicy()
		f(&p)
		if p.Validate() == nil {
			t.Errorf("bad policy %d accepted", i)
		}
	}
}
