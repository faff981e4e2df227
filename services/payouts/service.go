// Package payouts wires the payouts service into a Custody process: Module
// opens the payouts event store, starts the application (read side,
// deadlines, consumers of the order, fulfilment and trust streams) and
// registers custody.payouts.v1.PayoutsService.
//
// Layout: domain/ (the pure order-ledger and payout-run aggregates, the
// split arithmetic), app/ (reactions, deadlines, payout runs, the read
// side), grpcapi/ (validation, authorization, error mapping).
//
// The upstream streams may not exist yet when payouts starts alone
// (`custody run --target=payouts`). Start does not wait for them: each
// consumer starts in the background as soon as its stream appears. Start
// does wait for the read side to catch up with the payouts store, which
// re-schedules every open return window and reserve hold.
package payouts

import (
	"context"
	"fmt"
	"maps"
	"os"
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

// startTimeout bounds how long Start waits for the read side to catch up.
const startTimeout = 2 * time.Minute

// Options configure the payouts service.
type Options struct {
	// Policy holds every rate and duration (domain.DefaultPolicy).
	Policy domain.Policy
	// ReadWait bounds read-your-writes waits. Default 2s.
	ReadWait time.Duration
}

// Environment variables (and the flag names the binary should give them).
// Each is parsed by Options.Set.
const (
	// EnvPlatformFeeBps: merchant fee in basis points, 0..10000. Default 500.
	EnvPlatformFeeBps = "CUSTODY_PAYOUTS_PLATFORM_FEE_BPS"
	// EnvReturnWindow: return window after delivery (Go duration). Default 168h.
	EnvReturnWindow = "CUSTODY_PAYOUTS_RETURN_WINDOW"
	// EnvTierWindowExtension: per trust tier, how much longer the window
	// is: "watch=168h,standard=0s". Tiers not named keep their default
	// (gold 0, silver 0, standard 0, watch 168h); new names add tiers.
	EnvTierWindowExtension = "CUSTODY_PAYOUTS_TIER_WINDOW_EXTENSION"
	// EnvTierReserveBps: per trust tier, the reserve held back at release:
	// "gold=0,silver=200,standard=500,watch=1500" (the defaults).
	EnvTierReserveBps = "CUSTODY_PAYOUTS_TIER_RESERVE_BPS"
	// EnvReserveHold: how long a reserve is held after release. Default 720h.
	EnvReserveHold = "CUSTODY_PAYOUTS_RESERVE_HOLD"
	// EnvMinPayout: the smallest balance a run pays, in minor units: "1000"
	// for every currency, or "1000,JPY=150,KWD=10000" with exceptions.
	// Default 1000.
	EnvMinPayout = "CUSTODY_PAYOUTS_MIN_PAYOUT"
	// EnvAttributionWindow: how long before the order an affiliate touch
	// still earns commission (keep it equal to the order service's
	// CUSTODY_ATTRIBUTION_WINDOW). Default 168h.
	EnvAttributionWindow = "CUSTODY_PAYOUTS_ATTRIBUTION_WINDOW"
)

// Setting describes one configurable value, for the binary's flags.
type Setting struct {
	Env   string
	Flag  string
	Usage string
}

// Settings lists every setting; cmd/custody can declare one flag per row
// and hand its value to Options.Set.
var Settings = []Setting{
	{EnvPlatformFeeBps, "payouts-platform-fee-bps", "platform merchant fee in basis points (0..10000)"},
	{EnvReturnWindow, "payouts-return-window", "return window after delivery before money is released"},
	{EnvTierWindowExtension, "payouts-tier-window-extension", `return window extension per trust tier, e.g. "watch=168h"`},
	{EnvTierReserveBps, "payouts-tier-reserve-bps", `reserve held back at release per trust tier, e.g. "gold=0,silver=200,standard=500,watch=1500"`},
	{EnvReserveHold, "payouts-reserve-hold", "how long a vendor's reserve is held after release"},
	{EnvMinPayout, "payouts-min-payout", `minimum payout in minor units, e.g. "1000" or "1000,JPY=150"`},
	{EnvAttributionWindow, "payouts-attribution-window", "how long an affiliate touch earns commission (as the order service's)"},
}

// DefaultOptions are the defaults with the environment applied.
func DefaultOptions() (Options, error) {
	o := Options{Policy: domain.DefaultPolicy(), ReadWait: 2 * time.Second}
	for _, s := range Settings {
		if v, ok := os.LookupEnv(s.Env); ok && v != "" {
			if err := o.Set(s.Env, v); err != nil {
				return o, err
			}
		}
	}
	return o, o.Policy.Validate()
}

// Set parses one setting (named by its environment variable) into o.
func (o *Options) Set(env, value string) error {
	bad := func(want string) error { return fmt.Errorf("%s=%q: want %s", env, value, want) }
	value = strings.TrimSpace(value)
	p := &o.Policy
	if p.Tiers == nil {
		*p = domain.DefaultPolicy()
	}
	switch env {
	case EnvPlatformFeeBps:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 || n > money.BasisPointsPerUnit {
			return bad("basis points 0..10000, e.g. 500")
		}
		p.PlatformFeeBps = n
	case EnvReturnWindow, EnvReserveHold, EnvAttributionWindow:
		d, err := time.ParseDuration(value)
		if err != nil || d < 0 || (env == EnvAttributionWindow && d == 0) {
			return bad("a duration such as 168h")
		}
		switch env {
		case EnvReturnWindow:
			p.ReturnWindow = d
		case EnvReserveHold:
			p.ReserveHold = d
		default:
			p.AttributionWindow = d
		}
	case EnvTierWindowExtension, EnvTierReserveBps:
		tiers := maps.Clone(p.Tiers)
		for item := range strings.SplitSeq(value, ",") {
			name, v, ok := strings.Cut(strings.TrimSpace(item), "=")
			name = strings.ToLower(strings.TrimSpace(name))
			if !ok || name == "" {
				return bad("tier=value pairs, e.g. watch=168h")
			}
			t := tiers[name]
			if env == EnvTierWindowExtension {
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
			tiers[name] = t
		}
		p.Tiers = tiers
	case EnvMinPayout:
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
		return fmt.Errorf("unknown payouts setting %s (known: %s)", env, strings.Join(settingNames(), ", "))
	}
	return nil
}

func settingNames() []string {
	var out []string
	for _, s := range Settings {
		out = append(out, s.Env)
	}
	return slices.Sorted(slices.Values(out))
}

// Module is the payouts service with DefaultOptions (so the environment
// applies; a malformed CUSTODY_PAYOUTS_* value fails Start).
func Module() platform.Module {
	return platform.Module{Name: Name, Projections: projections, Start: func(ctx context.Context, d platform.Deps) (platform.Running, error) {
		o, err := DefaultOptions()
		if err != nil {
			return platform.Running{}, err
		}
		return start(ctx, d, o)
	}}
}

// NewModule is the payouts service with explicit options (tests, the
// binary's flags).
func NewModule(o Options) platform.Module {
	return platform.Module{Name: Name, Projections: projections, Start: func(ctx context.Context, d platform.Deps) (platform.Running, error) {
		return start(ctx, d, o)
	}}
}

func start(ctx context.Context, d platform.Deps, o Options) (platform.Running, error) {
	if o.Policy.Tiers == nil {
		o.Policy = domain.DefaultPolicy()
	}
	if err := o.Policy.Validate(); err != nil {
		return platform.Running{}, err
	}
	store, err := d.OpenStore(ctx, Name)
	if err != nil {
		return platform.Running{}, err
	}
	svc := app.New(app.Config{Policy: o.Policy, ReadWait: o.ReadWait}, app.Deps{
		Store: store,
		OpenUpstream: func(ctx context.Context, service string) (app.Store, error) {
			st, err := d.OpenStoreOf(ctx, service)
			if err != nil {
				return nil, err
			}
			return st, nil
		},
		JetStream: d.JetStream, Replicas: d.Replicas, Clock: d.Clock, Logger: d.Logger,
	})
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	err = svc.Start(sctx)
	cancel()
	if err != nil {
		return platform.Running{}, fmt.Errorf("payouts: %w", err)
	}
	api := grpcapi.New(svc, d.Logger)
	return platform.Running{
		Register: func(r grpc.ServiceRegistrar) { payoutsv1.RegisterPayoutsServiceServer(r, api) },
		Services: []string{payoutsv1.PayoutsService_ServiceDesc.ServiceName},
		Stop:     svc.Stop,
	}, nil
}
