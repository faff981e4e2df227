package payouts_test

import (
	"testing"
	"time"

	"github.com/custody/custody/services/payouts"
	"github.com/custody/custody/services/payouts/domain"
)

func TestDefaultOptions(t *testing.T) {
	for _, s := range payouts.Settings {
		t.Setenv(s.Env, "")
	}
	o, err := payouts.DefaultOptions()
	if err != nil {
		t.Fatal(err)
	}
	p := o.Policy
	if p.PlatformFeeBps != 500 || p.ReturnWindow != 7*24*time.Hour || p.ReserveHold != 30*24*time.Hour ||
		p.AttributionWindow != 7*24*time.Hour || p.MinPayout.Default != 1000 || p.Tiers[domain.TierWatch].ReserveBps != 1500 {
		t.Fatalf("defaults: %+v", p)
	}

	t.Setenv(payouts.EnvPlatformFeeBps, "250")
	t.Setenv(payouts.EnvReturnWindow, "72h")
	t.Setenv(payouts.EnvReserveHold, "240h")
	t.Setenv(payouts.EnvAttributionWindow, "36h")
	t.Setenv(payouts.EnvTierWindowExtension, "watch=48h, Gold=1h")
	t.Setenv(payouts.EnvTierReserveBps, "silver=100,platinum=0")
	t.Setenv(payouts.EnvMinPayout, "2500, JPY=300")
	if o, err = payouts.DefaultOptions(); err != nil {
		t.Fatal(err)
	}
	p = o.Policy
	if p.PlatformFeeBps != 250 || p.ReturnWindow != 72*time.Hour || p.ReserveHold != 240*time.Hour || p.AttributionWindow != 36*time.Hour {
		t.Fatalf("from the environment: %+v", p)
	}
	if p.Tiers["watch"].WindowExtension != 48*time.Hour || p.Tiers["watch"].ReserveBps != 1500 || p.Tiers["gold"].WindowExtension != time.Hour ||
		p.Tiers["silver"].ReserveBps != 100 || p.Tiers["standard"].ReserveBps != 500 {
		t.Fatalf("tiers: %+v", p.Tiers)
	}
	if _, ok := p.Tiers["platinum"]; !ok {
		t.Fatal("a new tier was not added")
	}
	if p.MinPayout.For("EUR") != 2500 || p.MinPayout.For("JPY") != 300 {
		t.Fatalf("min payout %+v", p.MinPayout)
	}

	for env, bad := range map[string]string{
		payouts.EnvPlatformFeeBps:      "10001",
		payouts.EnvReturnWindow:        "a week",
		payouts.EnvReserveHold:         "-1h",
		payouts.EnvAttributionWindow:   "0s",
		payouts.EnvTierWindowExtension: "watch",
		payouts.EnvTierReserveBps:      "watch=20000",
		payouts.EnvMinPayout:           "EUR=1,500",
	} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, bad)
			if _, err := payouts.DefaultOptions(); err == nil {
				t.Errorf("%s=%q accepted", env, bad)
			}
		})
	}
	var o2 payouts.Options
	if err := o2.Set("CUSTODY_PAYOUTS_NOPE", "1"); err == nil {
		t.Error("unknown setting accepted")
	}
}
