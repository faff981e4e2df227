package domain

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/custody/custody/pkg/money"
)

// Trust tiers (trust's TrustScoreChanged.tier). A vendor trust has never
// scored is TierStandard; so is a tier this policy does not know.
const (
	TierGold     = "gold"
	TierSilver   = "silver"
	TierStandard = "standard"
	TierWatch    = "watch"
)

// TierPolicy is what a trust tier changes.
type TierPolicy struct {
	// WindowExtension lengthens the return window.
	WindowExtension time.Duration
	// ReserveBps of the vendor's share is held back at release, for
	// Policy.ReserveHold.
	ReserveBps int64
}

// Policy holds every rate and duration of the ledger. The app turns it into
// the values each command carries, so the events record what was applied.
type Policy struct {
	// PlatformFeeBps is the merchant fee on every line. Default 500 (5%).
	// There is no attribution window here: the order service decides which
	// lines a creator earns commission on, and the ledger books what the
	// order recorded.
	PlatformFeeBps int64
	// ReturnWindow starts at delivery. Default 7 days.
	ReturnWindow time.Duration
	// ReserveHold: how long a part's reserve is held after release.
	// Default 30 days.
	ReserveHold time.Duration
	// Tiers by name; see DefaultTiers.
	Tiers map[string]TierPolicy
	// MinPayout: a payout run pays an available balance only from this
	// amount on; at most money.MaxAmount (a threshold above the largest
	// order total is a typo).
	MinPayout MinPayout
}

// DefaultTiers: gold and silver vendors earn their money soonest; a vendor
// on watch waits a week longer and leaves 15% in reserve for 30 days.
func DefaultTiers() map[string]TierPolicy {
	return map[string]TierPolicy{
		TierGold:     {WindowExtension: 0, ReserveBps: 0},
		TierSilver:   {WindowExtension: 0, ReserveBps: 200},
		TierStandard: {WindowExtension: 0, ReserveBps: 500},
		TierWatch:    {WindowExtension: 7 * 24 * time.Hour, ReserveBps: 1500},
	}
}

// DefaultPolicy is the policy without configuration.
func DefaultPolicy() Policy {
	return Policy{
		PlatformFeeBps: 500,
		ReturnWindow:   7 * 24 * time.Hour,
		ReserveHold:    30 * 24 * time.Hour,
		Tiers:          DefaultTiers(),
		MinPayout:      MinPayout{Default: 1000},
	}
}

// Validate reports a policy that could book nonsense.
func (p Policy) Validate() error {
	var errs []string
	if p.PlatformFeeBps < 0 || p.PlatformFeeBps > money.BasisPointsPerUnit {
		errs = append(errs, fmt.Sprintf("platform fee %d bps: want 0..10000", p.PlatformFeeBps))
	}
	if p.ReturnWindow < 0 || p.ReserveHold < 0 {
		errs = append(errs, "the return window and the reserve hold must not be negative")
	}
	if _, ok := p.Tiers[TierStandard]; !ok {
		errs = append(errs, "the standard tier must be defined (it is the default)")
	}
	for _, name := range slices.Sorted(maps.Keys(p.Tiers)) {
		t := p.Tiers[name]
		if t.ReserveBps < 0 || t.ReserveBps > money.BasisPointsPerUnit || t.WindowExtension < 0 {
			errs = append(errs, fmt.Sprintf("tier %s: reserve %d bps (want 0..10000), extension %s (want >= 0)", name, t.ReserveBps, t.WindowExtension))
		}
	}
	if p.MinPayout.Default < 0 || p.MinPayout.Default > money.MaxAmount {
		errs = append(errs, fmt.Sprintf("minimum payout %d: want 0..%d minor units", p.MinPayout.Default, int64(money.MaxAmount)))
	}
	for _, c := range slices.Sorted(maps.Keys(p.MinPayout.PerCurrency)) {
		if m := p.MinPayout.PerCurrency[c]; money.ValidateCurrency(c) != nil || m < 0 || m > money.MaxAmount {
			errs = append(errs, fmt.Sprintf("minimum payout %s=%d: want a supported currency and 0..%d minor units", c, m, int64(money.MaxAmount)))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("payouts policy: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Tier returns the tier name in effect for a vendor's tier (unknown and
// empty: standard) and its policy.
func (p Policy) Tier(name string) (string, TierPolicy) {
	name = strings.ToLower(strings.TrimSpace(name))
	if t, ok := p.Tiers[name]; ok {
		return name, t
	}
	return TierStandard, p.Tiers[TierStandard]
}

// MinPayout is the smallest balance a run pays, in minor units, per
// currency (Default for the others). Below 1 counts as 1: zero is never paid.
type MinPayout struct {
	Default     int64
	PerCurrency map[string]int64
}

// For returns the minimum for a currency.
func (m MinPayout) For(currency string) int64 {
	v, ok := m.PerCurrency[currency]
	if !ok {
		v = m.Default
	}
	return max(v, 1)
}
