// Package order wires the order service into a Custody process: Module
// opens the order event store, starts the application (read model, catalog
// view, saga consumer) and registers custody.order.v1.OrderService.
//
// Layout: domain/ (the pure order aggregate and pricing rules), app/
// (commands, queries, projections, the stock saga), grpcapi/ (validation,
// authorization, error mapping).
//
// The catalog's event stream may not exist yet when the order service
// starts alone (`custody run --target=order`). Start does not wait for it:
// the catalog view and the saga consumer start in the background as soon as
// it appears. Until then PlaceOrder answers Unavailable (after waiting up to
// Options.CatalogWait); GetOrder, ListOrders and CancelOrder work from the
// start.
package order

import (
	"context"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"

	"github.com/custody/custody/pkg/platform"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	"github.com/custody/custody/services/order/app"
	"github.com/custody/custody/services/order/domain"
	"github.com/custody/custody/services/order/grpcapi"
)

// EnvAttributionWindow overrides Options.AttributionWindow (a Go duration,
// e.g. "168h" or "30m").
const EnvAttributionWindow = "CUSTODY_ATTRIBUTION_WINDOW"

// Options configure the order service. Zero fields take the defaults.
type Options struct {
	// AttributionWindow: how long after following an affiliate link or
	// watching a live session an order still earns the creator commission.
	// Default 7 days; CUSTODY_ATTRIBUTION_WINDOW overrides it in Module().
	AttributionWindow time.Duration
	// CatalogWait bounds the read-your-writes waits (catalog view before
	// pricing, read model before listing). Default 2s.
	CatalogWait time.Duration
	// MaxWait caps PlaceOrder's wait_timeout. Default 30s.
	MaxWait time.Duration
}

// DefaultOptions are the defaults, with the environment applied.
func DefaultOptions() (Options, error) {
	o := Options{AttributionWindow: domain.DefaultAttributionWindow, CatalogWait: 2 * time.Second, MaxWait: 30 * time.Second}
	if s := os.Getenv(EnvAttributionWindow); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return o, fmt.Errorf("%s=%q: want a positive duration such as 168h", EnvAttributionWindow, s)
		}
		o.AttributionWindow = d
	}
	return o, nil
}

// Name is the module (target) name.
const Name = "order"

// Module is the order service with DefaultOptions (so the environment
// applies; a malformed CUSTODY_ATTRIBUTION_WINDOW fails Start).
func Module() platform.Module {
	return platform.Module{Name: Name, Projections: projections, Start: func(ctx context.Context, d platform.Deps) (platform.Running, error) {
		o, err := DefaultOptions()
		if err != nil {
			return platform.Running{}, err
		}
		return start(ctx, d, o)
	}}
}

// NewModule is the order service with explicit options (tests, embedding).
func NewModule(o Options) platform.Module {
	return platform.Module{Name: Name, Projections: projections, Start: func(ctx context.Context, d platform.Deps) (platform.Running, error) {
		return start(ctx, d, o)
	}}
}

func start(ctx context.Context, d platform.Deps, o Options) (platform.Running, error) {
	store, err := d.OpenStore(ctx, Name)
	if err != nil {
		return platform.Running{}, err
	}
	svc := app.New(app.Config{AttributionWindow: o.AttributionWindow, CatalogWait: o.CatalogWait, MaxWait: o.MaxWait},
		app.Deps{
			Store: store,
			OpenCatalog: func(ctx context.Context) (app.Store, error) {
				st, err := d.OpenStoreOf(ctx, "catalog")
				if err != nil {
					return nil, err
				}
				return st, nil
			},
			JetStream: d.JetStream, Replicas: d.Replicas, Clock: d.Clock, Logger: d.Logger,
		})
	if err := svc.Start(ctx); err != nil {
		return platform.Running{}, fmt.Errorf("order: %w", err)
	}
	api := grpcapi.New(svc, d.Logger)
	return platform.Running{
		Register: func(r grpc.ServiceRegistrar) { orderv1.RegisterOrderServiceServer(r, api) },
		Services: []string{orderv1.OrderService_ServiceDesc.ServiceName},
		Stop:     svc.Stop,
	}, nil
}
