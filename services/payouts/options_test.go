package payouts_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custody/custody/pkg/platform/platformtest"
	"github.com/custody/custody/services/payouts"
	"github.com/custody/custody/services/payouts/domain"
)

func TestDefaultOptions(t *testing.T) {
	t.Parallel()
	o := payouts.DefaultOptions()
	p := o.Policy
	if p.PlatformFeeBps != 500 || p.ReturnWindow != 7*24*time.Hour || p.ReserveHold != 30*24*time.Hour ||
		p.MinPayout.Default != 1000 || p.Tiers[domain.TierWatch].ReserveBps != 1500 || o.ReadWait != 2*time.Second {
		t.Fatalf("defaults: %+v", o)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
}

// The module declares its own flags, with today's names and the defaults
// shown; there is one attribution window, the order service's.
func TestFlags(t *testing.T) {
	t.Parallel()
	m := payouts.Module()
	names := platformtest.FlagNames(m.RegisterFlags)
	want := []string{"payouts-min-payout", "payouts-platform-fee-bps", "payouts-reserve-hold", "payouts-return-window",
		"payouts-tier-reserve-bps", "payouts-tier-window-extension"}
	if !slices.Equal(names, want) {
		t.Fatalf("flags %v, want %v", names, want)
	}
	defaults := map[string]string{
		"payouts-platform-fee-bps":      "500",
		"payouts-return-window":         "168h0m0s",
		"payouts-reserve-hold":          "720h0m0s",
		"payouts-tier-window-extension": "gold=0s,silver=0s,standard=0s,watch=168h0m0s",
		"payouts-tier-reserve-bps":      "gold=0,silver=200,standard=500,watch=1500",
		"payouts-min-payout":            "1000",
	}
	fs, _ := platformtest.ParseFlags(m.RegisterFlags, nil)
	for name, def := range defaults {
		if got := fs.Lookup(name).DefValue; got != def {
			t.Errorf("--%s default %q, want %q", name, got, def)
		}
	}
	if payouts.NewModule(payouts.DefaultOptions()).RegisterFlags != nil {
		t.Error("NewModule declares flags; its options are explicit")
	}
}

func TestFlagsSetOptions(t *testing.T) {
	t.Parallel()
	o, err := platformtest.ParseOptions(payouts.DefaultOptions(), nil,
		"--payouts-platform-fee-bps=250", "--payouts-return-window=72h", "--payouts-reserve-hold=240h",
		"--payouts-tier-window-extension=watch=48h, Gold=1h", "--payouts-tier-reserve-bps=silver=100,platinum=0",
		"--payouts-min-payout=2500, JPY=300",
	)
	if err != nil {
		t.Fatal(err)
	}
	p := o.Policy
	if p.PlatformFeeBps != 250 || p.ReturnWindow != 72*time.Hour || p.ReserveHold != 240*time.Hour {
		t.Fatalf("from the flags: %+v", p)
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
}

// The binary also takes each flag from CUSTODY_<NAME>.
func TestFlagsFromTheEnvironment(t *testing.T) {
	t.Parallel()
	env := map[string]string{"CUSTODY_PAYOUTS_PLATFORM_FEE_BPS": "300", "CUSTODY_PAYOUTS_MIN_PAYOUT": "700"}
	o, err := platformtest.ParseOptions(payouts.DefaultOptions(), env, "--payouts-min-payout=900") // a flag given wins
	if err != nil {
		t.Fatal(err)
	}
	if o.Policy.PlatformFeeBps != 300 || o.Policy.MinPayout.Default != 900 {
		t.Fatalf("policy %+v", o.Policy)
	}
}

// A bad value fails the command line, naming the flag.
func TestBadFlags(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{
		"--payouts-platform-fee-bps=10001",
		"--payouts-return-window=a week",
		"--payouts-reserve-hold=-1h",
		"--payouts-tier-window-extension=watch",
		"--payouts-tier-reserve-bps=watch=20000",
		"--payouts-min-payout=EUR=1,500",
		"--payouts-min-payout=1000,XYZ=1",
		"--payouts-min-payout=10000000000000001", // above money.MaxAmount
		"--payouts-min-payout=1000,JPY=9223372036854775807",
		"--payouts-platform-fee-bps=-1",
		"--payouts-attribution-window=168h", // the order service's window is the only one
	} {
		t.Run(arg, func(t *testing.T) {
			t.Parallel()
			_, err := platformtest.ParseOptions(payouts.DefaultOptions(), nil, arg)
			if err == nil {
				t.Fatalf("%s accepted", arg)
			}
			if name, _, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "="); !strings.Contains(err.Error(), name) {
				t.Errorf("%s: the error %q does not name the flag", arg, err)
			}
		})
	}
}
