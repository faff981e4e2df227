// Package payouts declares the payouts service as a platform module:
// Module opens the payouts event store, builds the application and returns
// its parts — the ledger read side, stored in the process's read-model
// store (which re-schedules every open return window and reserve hold as
// it is attached to its stored state and as it folds the store), and the
// vendors' trust tiers, checkpointed; the reactions to the order, fulfilment and trust services' events, the
// deadline scheduler and custody.payouts.v1.PayoutsService. The platform's
// runtime runs them; New starts nothing.
//
// Layout: domain/ (the pure order-ledger and payout-run aggregates, the
// split arithmetic), app/ (reactions, deadlines, payout runs, the read
// side), grpcapi/ (validation, authorization, error mapping).
//
// The upstream streams may not exist yet when payouts starts alone
// (`custody run --target=payouts`): the runtime starts each reaction and
// the tier view as soon as its stream appears. The ledger read side, fed by
// the payouts store itself, has caught up before the process serves.
package payouts

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/custody/custody/pkg/money"
	"github.com/custody/custody/pkg/platform"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	"github.com/custody/custody/services/payouts/app"
	"github.com/custody/custody/services/payouts/domain"
	"github.com/custody/custody/services/payouts/grpcapi"
)

// Name is the module (target) name and the event store's service name.
const Name = "payouts"

// Options configure the payouts service.
type Options struct {
	// Policy holds every rate and duration (domain.DefaultPolicy).
	Policy domain.Policy
	// ReadWait bounds read-your-writes waits. Default 2s.
	ReadWait time.Duration
}

// DefaultOptions are the options without configuration.
func DefaultOptions() Options {
	return Options{Policy: domain.DefaultPolicy(), ReadWait: 2 * time.Second}
}

// Flag names; the binary also reads each from CUSTODY_<NAME> (upper case,
// '_' for '-'), e.g. CUSTODY_PAYOUTS_PLATFORM_FEE_BPS.
const (
	flagPlatformFeeBps      = "payouts-platform-fee-bps"
	flagReturnWindow        = "payouts-return-window"
	flagTierWindowExtension = "payouts-tier-window-extension"
	flagTierReserveBps      = "payouts-tier-reserve-bps"
	flagReserveHold         = "payouts-reserve-hold"
	flagMinPayout           = "payouts-min-payout"
)

// RegisterFlags declares every setting of o as a flag on fs, with o's
// values as defaults. A value is parsed, and the policy it makes validated,
// when the flag is set: a bad one fails the command line.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	for _, f := range []struct{ name, usage string }{
		{flagPlatformFeeBps, "platform merchant fee in basis points (0..10000)"},
		{flagReturnWindow, "return window after delivery before money is released"},
		{flagTierWindowExtension, `return window extension per trust tier, e.g. "watch=168h"; tiers not named keep theirs, new names add tiers`},
		{flagTierReserveBps, `reserve held back at release per trust tier (basis points), e.g. "watch=1500"; tiers not named keep theirs`},
		{flagReserveHold, "how long a vendor's reserve is held after release"},
		{flagMinPayout, `minimum payout in minor units, e.g. "1000" or "1000,JPY=150"`},
	} {
		fs.Var(setting{o: o, name: f.name}, f.name, f.usage)
	}
}

// setting is one flag: it parses into its Options and shows their value.
type setting struct {
	o    *Options
	name string
}

func (s setting) String() string {
	if s.o == nil { // the flag package's zero value, for its defaults
		return ""
	}
	return s.o.value(s.name)
}

func (s setting) Set(v string) error {
	if err := s.o.set(s.name, v); err != nil {
		return err
	}
	return s.o.Policy.Validate()
}

// set parses one flag's value into o.
func (o *Options) set(name, value string) error {
	bad := func(want string) error { return fmt.Errorf("%q: want %s", value, want) }
	value = strings.TrimSpace(value)
	p := &o.Policy
	if p.Tiers == nil {
		*p = domain.DefaultPolicy()
	}
	switch name {
	case flagPlatformFeeBps:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 || n > money.BasisPointsPerUnit {
			return bad("basis points 0..10000, e.g. 500")
		}
		p.PlatformFeeBps = n
	case flagReturnWindow, flagReserveHold:
		d, err := time.ParseDuration(value)
		if err != nil || d < 0 {
			return bad("a duration such as 168h")
		}
		if name == flagReturnWindow {
			p.ReturnWindow = d
		} else {
			p.ReserveHold = d
		}
	case flagTierWindowExtension, flagTierReserveBps:
		tiers := maps.Clone(p.Tiers)
		for item := range strings.SplitSeq(value, ",") {
			tier, v, ok := strings.Cut(strings.TrimSpace(item), "=")
			tier = strings.ToLower(strings.TrimSpace(tier))
			if !ok || tier == "" {
				return bad("tier=value pairs, e.g. watch=168h")
			}
			t := tiers[tier]
			if name == flagTierWindowExtension {
				d, err := time.ParseDuration(strings.TrimSpace(v))
				if err != nil || d < 0 {
					return bad("tier=duration pairs, e.g. watch=168h")
				}
				t.WindowExtension = d
			} else {
				n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				if err != nil || n < 0 || n > money.BasisPointsPerUnit {
					return bad("tier=basis points pairs (0..10000), e.g. watch=1500")
				}
				t.ReserveBps = n
			}
			tiers[tier] = t
		}
		p.Tiers = tiers
	case flagMinPayout:
		m := domain.MinPayout{Default: p.MinPayout.Default, PerCurrency: map[string]int64{}}
		for i, item := range strings.Split(value, ",") {
			cur, v, scoped := strings.Cut(strings.TrimSpace(item), "=")
			if !scoped {
				cur, v = "", cur
			}
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || n < 0 || (!scoped && i > 0) {
				return bad(`minor units, e.g. "1000" or "1000,JPY=150"`)
			}
			if !scoped {
				m.Default = n
				continue
			}
			cur = strings.TrimSpace(cur)
			if err := money.ValidateCurrency(cur); err != nil {
				return bad(`supported currencies, e.g. "1000,JPY=150"`)
			}
			m.PerCurrency[cur] = n
		}
		p.MinPayout = m
	default:
		return fmt.Errorf("unknown payouts setting %s", name)
	}
	return nil
}

// value formats one flag's current value as set would parse it.
func (o *Options) value(name string) string {
	p := o.Policy
	tiers := func(f func(domain.TierPolicy) string) string {
		var out []string
		for _, t := range slices.Sorted(maps.Keys(p.Tiers)) {
			out = append(out, t+"="+f(p.Tiers[t]))
		}
		return strings.Join(out, ",")
	}
	switch name {
	case flagPlatformFeeBps:
		return strconv.FormatInt(p.PlatformFeeBps, 10)
	case flagReturnWindow:
		return p.ReturnWindow.String()
	case flagReserveHold:
		return p.ReserveHold.String()
	case flagTierWindowExtension:
		return tiers(func(t domain.TierPolicy) string { return t.WindowExtension.String() })
	case flagTierReserveBps:
		return tiers(func(t domain.TierPolicy) string { return strconv.FormatInt(t.ReserveBps, 10) })
	case flagMinPayout:
		out := []string{strconv.FormatInt(p.MinPayout.Default, 10)}
		for _, cur := range slices.Sorted(maps.Keys(p.MinPayout.PerCurrency)) {
			out = append(out, cur+"="+strconv.FormatInt(p.MinPayout.PerCurrency[cur], 10))
		}
		return strings.Join(out, ",")
	}
	return ""
}

// Module is the payouts service with DefaultOptions, changed by its flags.
func Module() platform.Module { return platform.WithFlags(Name, DefaultOptions(), parts) }

// NewModule is the payouts service with explicit options (tests); it
// declares no flags.
func NewModule(o Options) platform.Module { return platform.WithOptions(Name, o, parts) }

// Trust's events are booked one by one, so that a claim's open, refund and
// close are booked in the order trust wrote them; the other upstreams'
// side by side (the platform's lanes), each order's in order.
const trustConcurrency = 1

func parts(ctx context.Context, d platform.Deps, o Options) (platform.Parts, error) {
	if o.Policy.Tiers == nil {
		o.Policy = domain.DefaultPolicy()
	}
	if err := o.Policy.Validate(); err != nil {
		return platform.Parts{}, err
	}
	deps, err := d.AppDeps(ctx, Name)
	if err != nil {
		return platform.Parts{}, err
	}
	svc := app.New(app.Config{Policy: o.Policy, ReadWait: o.ReadWait}, deps)
	api := grpcapi.New(svc, d.Logger)
	orders, fulfilment, trust := svc.OrderRoutes(), svc.FulfilmentRoutes(), svc.TrustRoutes()
	return platform.Parts{
		Register: func(r grpc.ServiceRegistrar) { payoutsv1.RegisterPayoutsServiceServer(r, api) },
		Services: []string{grpcapi.ServiceName},
		Projections: []platform.Projection{
			{Name: "ledger balances and entries", Source: Name, Apply: svc.View().Apply, Position: svc.View().Position(), Stored: svc.View()},
			{Name: "vendor trust tiers", Source: "trust", Apply: svc.Tiers().Apply, Position: svc.Tiers().Position(), Checkpoint: svc.Tiers()},
		},
		Reactions: []platform.Reaction{
			{Name: app.OrderConsumer, Source: "order", EventTypes: orders.EventTypes(), Handle: orders.Handle},
			{Name: app.FulfilmentConsumer, Source: "fulfilment", EventTypes: fulfilment.EventTypes(), Handle: fulfilment.Handle},
			{Name: app.TrustConsumer, Source: "trust", EventTypes: trust.EventTypes(), Handle: trust.Handle, Concurrency: trustConcurrency,
				Aggregates: app.TrustAggregates},
		},
		Workers: []func(context.Context){svc.RunDeadlines},
	}, nil
}
