// Package fulfilment is the fulfilment service as a module of a Custody
// process: Module (or NewModule) opens the fulfilment event store, builds
// the application and declares its parts — custody.fulfilment.v1.
// FulfilmentService, the "fulfilments" read model (fed by its own store; it
// has caught up before the process serves; it keeps the pending ship-by
// deadlines by due time, and the scheduler holds the earliest), the
// reaction fulfilment-on-order to the order service's OrderConfirmed and
// OrderCancelled, and the deadline scheduler as a worker. The platform runs them; `custody rebuild` folds the same
// read model.
//
// Layout: domain/ (the pure fulfilment and tracking aggregates, carrier
// formats), app/ (commands, queries, the read model and watches, the order
// event handler, deadlines), grpcapi/ (validation, authorization, error
// mapping).
//
// The order service's stream may not exist yet when the fulfilment service
// starts alone (`custody run --target=fulfilment`). The process does not
// wait for it: the reaction starts as soon as it appears. Every RPC works
// from the start.
package fulfilment

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/custody/custody/pkg/deadline"
	"github.com/custody/custody/pkg/platform"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	"github.com/custody/custody/services/fulfilment/app"
	"github.com/custody/custody/services/fulfilment/domain"
	"github.com/custody/custody/services/fulfilment/grpcapi"
)

// Name is the module (target) name and the event store's service name.
const Name = "fulfilment"

// ServiceName is the gRPC service this module registers.
const ServiceName = grpcapi.ServiceName

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
	// DefaultDeadlinesHeld: ship-by deadlines held in memory.
	DefaultDeadlinesHeld = deadline.DefaultHeld
)

// Options configure the fulfilment service. Zero fields take the defaults.
type Options struct {
	// HandlingTime: ship-by = order confirmation + HandlingTime, for the
	// vendors that set no handling time of their own in the catalog.
	// Default 3 days; flag --fulfilment-handling-time.
	HandlingTime time.Duration
	// ShipByPolicy: PolicyGrace (default) or PolicyCancel. Whatever the
	// policy, a fulfilment that has partly shipped is never cancelled: the
	// miss is only recorded (action "flag"). Flag --fulfilment-ship-by-policy.
	ShipByPolicy string
	// ShipByGrace: the grace period of PolicyGrace. Default 1 day; flag
	// --fulfilment-ship-by-grace.
	ShipByGrace time.Duration
	// TransitTimes per carrier code; expected delivery = ship time + the
	// carrier's transit time (DefaultTransit for carriers not listed). Flag
	// --fulfilment-transit sets both ("dhl=72h,default=120h").
	TransitTimes   map[string]time.Duration
	DefaultTransit time.Duration
	// ReadWait bounds read-your-writes waits (lists, watch snapshots).
	// Default 2s.
	ReadWait time.Duration
	// DeadlinesHeld bounds the ship-by deadlines held in memory: the
	// earliest ones; the others wait in the read model's store until their
	// time comes. Default DefaultDeadlinesHeld; flag
	// --fulfilment-deadlines-held.
	DeadlinesHeld int
}

// DefaultOptions are the defaults, spelled out (they are the flags'
// defaults).
func DefaultOptions() Options {
	return Options{HandlingTime: DefaultHandlingTime, ShipByPolicy: PolicyGrace, ShipByGrace: DefaultShipByGrace,
		DefaultTransit: DefaultTransit, DeadlinesHeld: DefaultDeadlinesHeld}
}

// RegisterFlags declares the service's settings on fs, with o's values as
// defaults; a malformed value fails the parse.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.Var(platform.PositiveDuration(&o.HandlingTime), "fulfilment-handling-time",
		"ship-by deadline after the order's confirmation, for vendors that set none in the catalog: a `duration` above zero")
	fs.Var(policy{&o.ShipByPolicy}, "fulfilment-ship-by-policy",
		`when ship-by passes: "grace" (extend once, then cancel) or "cancel"`)
	fs.Var(platform.PositiveDuration(&o.ShipByGrace), "fulfilment-ship-by-grace",
		"the grace period of the grace policy: a `duration` above zero")
	fs.Var(platform.PositiveInt(&o.DeadlinesHeld), "fulfilment-deadlines-held",
		"ship-by deadlines held in memory (the earliest; the others wait in the read-model store): a `number` above zero")
	fs.Var(transit{o}, "fulfilment-transit",
		`transit time per carrier for the expected delivery, e.g. "dhl=72h,ups=48h,default=120h"; carriers not listed take the default`)
}

// policy is a flag.Value for a ship-by policy.
type policy struct{ p *string }

func (p policy) String() string {
	if p.p == nil {
		return ""
	}
	return *p.p
}

func (p policy) Set(s string) error {
	if s != PolicyGrace && s != PolicyCancel {
		return fmt.Errorf("want %q or %q", PolicyGrace, PolicyCancel)
	}
	*p.p = s
	return nil
}

// transit is a flag.Value for the transit times (ParseTransit's format).
type transit struct{ o *Options }

func (t transit) String() string {
	if t.o == nil {
		return ""
	}
	var items []string
	for _, code := range slices.Sorted(maps.Keys(t.o.TransitTimes)) {
		items = append(items, code+"="+t.o.TransitTimes[code].String())
	}
	if t.o.DefaultTransit > 0 {
		items = append(items, "default="+t.o.DefaultTransit.String())
	}
	return strings.Join(items, ",")
}

func (t transit) Set(s string) error {
	m, def, err := ParseTransit(s)
	if err != nil {
		return err
	}
	t.o.TransitTimes = m
	if def > 0 {
		t.o.DefaultTransit = def
	}
	return nil
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

// config checks options given in code (NewModule; flags are checked as
// they are parsed) and turns them into the app's configuration.
func (o Options) config() (app.Config, error) {
	cfg := app.Config{HandlingTime: o.HandlingTime, TransitTimes: o.TransitTimes, DefaultTransit: o.DefaultTransit, ReadWait: o.ReadWait,
		DeadlinesHeld: o.DeadlinesHeld}
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

// Module is the fulfilment service with DefaultOptions, which its flags
// (RegisterFlags) change before it starts.
func Module() platform.Module { return platform.WithFlags(Name, DefaultOptions(), build) }

// NewModule is the fulfilment service with explicit options (tests,
// embedding).
func NewModule(o Options) platform.Module { return platform.WithOptions(Name, o, build) }

// build opens the fulfilment store and declares what the platform runs.
func build(ctx context.Context, d platform.Deps, o Options) (platform.Parts, error) {
	cfg, err := o.config()
	if err != nil {
		return platform.Parts{}, fmt.Errorf("fulfilment: %w", err)
	}
	deps, err := d.AppDeps(ctx, Name)
	if err != nil {
		return platform.Parts{}, err
	}
	svc := app.New(cfg, deps)
	api := grpcapi.New(svc, d.Logger)
	rm, orders, vendors := svc.ReadModel(), svc.OrderRoutes(), svc.VendorTimes()
	return platform.Parts{
		Register: func(r grpc.ServiceRegistrar) { fulfilmentv1.RegisterFulfilmentServiceServer(r, api) },
		Services: []string{ServiceName},
		// Stored outside the heap (platform.Stored), caught up before the
		// process serves. It keeps every pending ship-by deadline by due
		// time, where the scheduler reads the earliest when it runs (also
		// those that passed while the process was down), and applying
		// events keeps them in step; watches replay what follows a cursor
		// from the event store.
		//
		// The vendors' handling times follow the catalog's events in the
		// background, in memory (one duration per vendor that set one).
		Projections: []platform.Projection{{Name: "fulfilments", Source: Name, Apply: rm.Apply, Position: rm.Position(),
			Stored: rm}, {Name: "vendor handling times", Source: "catalog", Apply: vendors.Apply, Position: vendors.Position()}},
		Reactions: []platform.Reaction{{
			Name: app.OrderConsumer, Source: "order", EventTypes: orders.EventTypes(),
			Handle: orders.Handle, Concurrency: svc.Config().ReactionConcurrency,
		}},
		// Starts once the read model has caught up, so every deadline is known.
		Workers: []func(context.Context){svc.Deadlines().Run},
		// Open watches end (the clients resume with their cursor).
		Stop: svc.Stop,
	}, nil
}
