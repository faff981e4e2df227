// Package order is the order service as a module of a Custody process:
// Module (or NewModule) opens the order event store, builds the
// application and declares its parts — custody.order.v1.OrderService, three
// read models (orders by buyer, vendor, creator, PSP reference and place
// time, fed by the order store; their tracking numbers, fed by the
// fulfilment store; the catalog view, fed by the catalog's) and four reactions (the stock saga
// on catalog events, fulfilment's progress, trust's refunds, payouts'
// settlements). The platform
// runs them.
//
// Layout: domain/ (the pure order aggregate and pricing rules), app/
// (commands, queries, read models, event handlers), grpcapi/ (validation,
// authorization, error mapping).
//
// The catalog's event stream may not exist yet when the order service
// starts alone (`custody run --target=order`). The process does not wait
// for it: the catalog view and the saga follow in the background as soon
// as it appears. Until the view has caught up, PlaceOrder answers
// Unavailable (after waiting up to Options.CatalogWait); GetOrder,
// ListOrders and CancelOrder work from the start.
package order

import (
	"context"
	"flag"
	"time"

	"google.golang.org/grpc"

	"github.com/custody/custody/pkg/platform"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	"github.com/custody/custody/services/order/app"
	"github.com/custody/custody/services/order/domain"
	"github.com/custody/custody/services/order/grpcapi"
)

// Name is the module (target) name.
const Name = "order"

// Options configure the order service. Zero fields take the defaults.
type Options struct {
	// AttributionWindow: how long after following an affiliate link or
	// watching a live session an order still earns the creator commission.
	// The platform's one attribution window (payouts books what the order
	// recorded). Default 7 days; flag --attribution-window.
	AttributionWindow time.Duration
	// CatalogWait bounds the read-your-writes waits (catalog view before
	// pricing, read model before listing). Default 2s.
	CatalogWait time.Duration
	// MaxWait caps PlaceOrder's wait_timeout. Default 30s.
	MaxWait time.Duration
}

// DefaultOptions are the defaults.
func DefaultOptions() Options {
	return Options{AttributionWindow: domain.DefaultAttributionWindow, CatalogWait: 2 * time.Second, MaxWait: 30 * time.Second}
}

// RegisterFlags declares the service's settings on fs, with o's values as
// defaults; a malformed value fails the parse.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.Var(platform.PositiveDuration(&o.AttributionWindow), "attribution-window",
		"how long after a creator touchpoint (affiliate link, live session) an order is attributed: a `duration` above zero (order)")
}

// Module is the order service with DefaultOptions, which its flags
// (RegisterFlags) change before it starts.
func Module() platform.Module { return platform.WithFlags(Name, DefaultOptions(), build) }

// NewModule is the order service with explicit options (tests, embedding).
func NewModule(o Options) platform.Module { return platform.WithOptions(Name, o, build) }

// build opens the order store and declares what the platform runs.
func build(ctx context.Context, d platform.Deps, o Options) (platform.Parts, error) {
	deps, err := d.AppDeps(ctx, Name)
	if err != nil {
		return platform.Parts{}, err
	}
	svc := app.New(app.Config{AttributionWindow: o.AttributionWindow, CatalogWait: o.CatalogWait, MaxWait: o.MaxWait}, deps)
	api := grpcapi.New(svc, d.Logger)
	catalog, fulfilment, trust, payouts := svc.CatalogRoutes(), svc.FulfilmentRoutes(), svc.TrustRoutes(), svc.PayoutsRoutes()
	return platform.Parts{
		Register: func(r grpc.ServiceRegistrar) { orderv1.RegisterOrderServiceServer(r, api) },
		Services: []string{orderv1.OrderService_ServiceDesc.ServiceName},
		Projections: []platform.Projection{
			// Caught up before the process serves: ListOrders lists from it.
			{Name: "orders by buyer and vendor", Source: Name, Apply: svc.Orders().Apply, Position: svc.Orders().Position(), Stored: svc.Orders()},
			// Followed in the background: ListOrders by tracking number
			// waits (bounded) until it has the shipments stored then.
			{Name: "orders by tracking number", Source: "fulfilment", Apply: svc.Orders().Tracking().Apply,
				Position: svc.Orders().Tracking().Position(), Stored: svc.Orders().Tracking()},
			// Followed in the background: PlaceOrder waits until it is ready.
			{Name: "catalog view (prices, links, pins)", Source: "catalog", Apply: svc.CatalogView().Apply, Position: svc.CatalogView().Position()},
		},
		Reactions: []platform.Reaction{
			{Name: app.SagaConsumer, Source: "catalog", EventTypes: catalog.EventTypes(), Handle: catalog.Handle,
				Aggregates: app.CatalogAnswerers, OrderBy: app.AnsweredOrder, Concurrency: 32},
			{Name: app.FulfilmentConsumer, Source: "fulfilment", EventTypes: fulfilment.EventTypes(), Handle: fulfilment.Handle},
			{Name: app.TrustConsumer, Source: "trust", EventTypes: trust.EventTypes(), Handle: trust.Handle,
				Aggregates: app.TrustAggregates},
			{Name: app.PayoutsConsumer, Source: "payouts", EventTypes: payouts.EventTypes(), Handle: payouts.Handle,
				Aggregates: app.PayoutsAggregates},
		},
	}, nil
}
