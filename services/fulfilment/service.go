// Package fulfilment wires the fulfilment service into a Custody process:
// Module opens the fulfilment event store, starts the application (read
// model, ship-by deadlines, the consumer of order events) and registers
// custody.fulfilment.v1.FulfilmentService.
//
// Layout: domain/ (the pure fulfilment and tracking aggregates, carrier
// formats), app/ (commands, queries, the read model and watches, reactions,
// deadlines), grpcapi/ (validation, authorization, error mapping).
//
// The order service's stream may not exist yet when the fulfilment service
// starts alone (`custody run --target=fulfilment`). Start does not wait for
// it: the consumer of order events starts in the background as soon as it
// appears. Every RPC works from the start.
package fulfilment

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/custody/custody/pkg/platform"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	"github.com/custody/custody/services/fulfilment/app"
	"github.com/custody/custody/services/fulfilment/domain"
	"github.com/custody/custody/services/fulfilment/grpcapi"
)

// Environment variables read by Module (DefaultOptions).
const (
	// EnvHandlingTime: how long a vendor has to ship (a Go duration, "72h").
	EnvHandlingTime = "CUSTODY_FULFILMENT_HANDLING_TIME"
	// EnvShipByPolicy: "grace" or "cancel".
	EnvShipByPolicy = "CUSTODY_FULFILMENT_SHIP_BY_POLICY"
	// EnvShipByGrace: the grace period of the "grace" policy ("24h").
	EnvShipByGrace = "CUSTODY_FULFILMENT_SHIP_BY_GRACE"
	// EnvTransit: transit times per carrier, "dhl=72h,ups=48h,default=120h".
	EnvTransit = "CUSTODY_FULFILMENT_TRANSIT"
)

// Ship-by policies.
const (
	// PolicyGrace: the first missed deadline grants Options.ShipByGrace more;
	// the second cancels (ShipByDeadlineMissed{action: "grace"}, then
	// {action: "cancel"} and FulfilmentCancelled).
	PolicyGrace = "grace"
	// PolicyCancel: the first missed deadline cancels.
	PolicyCancel = "cancel"
)

// Defaults.
const (
	DefaultHandlingTime = app.DefaultHandlingTime // 3 days
	DefaultShipByGrace  = 24 * time.Hour
	DefaultTransit      = app.DefaultTransit // 5 days
)

// Options configure the fulfilment service. Zero fields take the defaults.
type Options struct {
	// HandlingTime: ship-by = order confirmation + HandlingTime. Default 3
	// days.
	HandlingTime time.Duration
	// ShipByPolicy: PolicyGrace (default) or PolicyCancel. Whatever the
	// policy, a fulfilment that has partly shipped is never cancelled: the
	// miss is only recorded (action "flag").
	ShipByPolicy string
	// ShipByGrace: the grace period of PolicyGrace. Default 1 day.
	ShipByGrace time.Duration
	// TransitTimes per carrier code; expected delivery = ship time + the
	// carrier's transit time (DefaultTransit for carriers not listed).
	TransitTimes   map[string]time.Duration
	DefaultTransit time.Duration
	// ReadWait bounds read-your-writes waits (lists, watch snapshots).
	// Default 2s.
	ReadWait time.Duration
}

// DefaultOptions are the defaults, with the environment applied.
func DefaultOptions() (Options, error) {
	o := Options{}
	dur := func(env string, into *time.Duration) error {
		s := os.Getenv(env)
		if s == "" {
			return nil
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return fmt.Errorf("%s=%q: want a positive duration such as 72h", env, s)
		}
		*into = d
		return nil
	}
	if err := dur(EnvHandlingTime, &o.HandlingTime); err != nil {
		return o, err
	}
	if err := dur(EnvShipByGrace, &o.ShipByGrace); err != nil {
		return o, err
	}
	if s := os.Getenv(EnvShipByPolicy); s != "" {
		if s != PolicyGrace && s != PolicyCancel {
			return o, fmt.Errorf("%s=%q: want %q or %q", EnvShipByPolicy, s, PolicyGrace, PolicyCancel)
		}
		o.ShipByPolicy = s
	}
	if s := os.Getenv(EnvTransit); s != "" {
		m, def, err := ParseTransit(s)
		if err != nil {
			return o, fmt.Errorf("%s: %w", EnvTransit, err)
		}
		o.TransitTimes, o.DefaultTransit = m, def
	}
	return o, nil
}

// ParseTransit parses "dhl=72h,ups=48h,default=120h" (default optional).
func ParseTransit(s string) (map[string]time.Duration, time.Duration, error) {
	m := map[string]time.Duration{}
	var def time.Duration
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		code, ds, ok := strings.Cut(item, "=")
		d, err := time.ParseDuration(strings.TrimSpace(ds))
		if !ok || err != nil || d <= 0 {
			return nil, 0, fmt.Errorf("%q: want carrier=duration, e.g. dhl=72h", item)
		}
		code = strings.TrimSpace(code)
		switch _, known := domain.Carriers[code]; {
		case code == "default":
			def = d
		case !known:
			return nil, 0, fmt.Errorf("%q: unknown carrier %q (known: %s)", item, code, strings.Join(domain.CarrierCodes(), ", "))
		default:
			m[code] = d
		}
	}
	return m, def, nil
}

func (o Options) config() (app.Config, error) {
	cfg := app.Config{HandlingTime: o.HandlingTime, TransitTimes: o.TransitTimes, DefaultTransit: o.DefaultTransit, ReadWait: o.ReadWait}
	switch o.ShipByPolicy {
	case "", PolicyGrace:
		cfg.ShipByPolicy.Grace = o.ShipByGrace
		if cfg.ShipByPolicy.Grace <= 0 {
			cfg.ShipByPolicy.Grace = DefaultShipByGrace
		}
	case PolicyCancel:
	default:
		return cfg, fmt.Errorf("ship-by policy %q: want %q or %q", o.ShipByPolicy, PolicyGrace, PolicyCancel)
	}
	for code := range o.TransitTimes {
		if !slices.Contains(domain.CarrierCodes(), code) {
			return cfg, fmt.Errorf("transit time for unknown carrier %q", code)
		}
	}
	return cfg, nil
}

// Name is the module (target) name and the event store's service name.
const Name = "fulfilment"

// ServiceName is the gRPC service this module registers.
const ServiceName = grpcapi.ServiceName

// startTimeout bounds how long Start waits for the read model to catch up.
const startTimeout = 2 * time.Minute

// Module is the fulfilment service with DefaultOptions (so the environment
// applies; a malformed variable fails Start).
func Module() platform.Module {
	return platform.Module{Name: Name, Projections: projections, Start: func(ctx context.Context, d platform.Deps) (platform.Running, error) {
		o, err := DefaultOptions()
		if err != nil {
			return platform.Running{}, err
		}
		return start(ctx, d, o)
	}}
}

// NewModule is the fulfilment service with explicit options (tests,
// embedding).
func NewModule(o Options) platform.Module {
	return platform.Module{Name: Name, Projections: projections, Start: func(ctx context.Context, d platform.Deps) (platform.Running, error) {
		return start(ctx, d, o)
	}}
}

func start(ctx context.Context, d platform.Deps, o Options) (platform.Running, error) {
	cfg, err := o.config()
	if err != nil {
		return platform.Running{}, err
	}
	store, err := d.OpenStore(ctx, Name)
	if err != nil {
		return platform.Running{}, err
	}
	svc := app.New(cfg, app.Deps{
		Store: store,
		OpenOrders: func(ctx context.Context) (app.Store, error) {
			st, err := d.OpenStoreOf(ctx, "order")
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
		return platform.Running{}, fmt.Errorf("fulfilment: %w", err)
	}
	api := grpcapi.New(svc, d.Logger)
	return platform.Running{
		Register: func(r grpc.ServiceRegistrar) { fulfilmentv1.RegisterFulfilmentServiceServer(r, api) },
		Services: []string{ServiceName},
		Stop:     svc.Stop,
	}, nil
}
