// Package catalog is the catalog service of Custody: vendors, products with
// SKUs and their stock ledger, creators' affiliate links and live sessions,
// the saga that reserves an order's stock (all lines or none) when the
// order service publishes OrderPlaced and releases it on OrderCancelled or
// OrderRejected, and the stock moves that follow: shipped units are sold
// (fulfilment's FulfilmentShipped), a cancelled fulfilment gives its
// vendor's units back (FulfilmentCancelled), resellable returns go back on
// sale (trust's ReturnReceived).
//
// Module plugs it into a Custody process (pkg/platform): the module
// declares its gRPC service, its read model and its reactions; the
// platform runs them.
//
//	platform.Run(ctx, cfg, []platform.Module{catalog.Module(), order.Module()})
//
// Layout: domain/ (pure aggregates), app/ (command handlers, event
// handlers, the ListProducts read model), grpcapi/ (validation, access
// table, error mapping) and this file (the module).
package catalog

import (
	"context"

	"google.golang.org/grpc"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/platform"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	"github.com/custody/custody/services/catalog/app"
	"github.com/custody/custody/services/catalog/grpcapi"
)

// Names the module uses on the bus and in the process.
const (
	// Name is the module (target) name and the event store's service name.
	Name = "catalog"
	// ConsumerName is the durable consumer of order events (the saga).
	ConsumerName = "catalog-on-order"
	// ServiceName is the gRPC service this module registers.
	ServiceName = grpcapi.ServiceName
)

// Module is the catalog service as a platform module. It has no settings.
//
// Its parts: the catalog's event store (stream CUSTODY_CATALOG); the
// products-by-vendor read model, folded from that store, which has caught
// up before the process serves; and three reactions, each a durable
// consumer that starts once its source's stream exists (in microservice
// mode the order service may never have run yet) and then catches up from
// the source's first event:
//
//   - catalog-on-order: the reservation saga on OrderPlaced, OrderCancelled
//     and OrderLinesCancelled (the cancelled units go back on sale);
//   - catalog-on-fulfilment: FulfilmentShipped sells held units,
//     FulfilmentCancelled releases the vendor's part of the order;
//   - catalog-on-trust: ReturnReceived restocks resellable returns.
func Module() platform.Module {
	return platform.Module{Name: Name, New: newParts}
}

func newParts(ctx context.Context, d platform.Deps) (platform.Parts, error) {
	deps, err := d.AppDeps(ctx, Name)
	if err != nil {
		return platform.Parts{}, err
	}
	log := d.Logger
	a := app.New(deps)
	index := a.Index()
	api := grpcapi.New(a, log)
	saga, shipments, returns := app.NewSaga(a).Routes(), a.ShipmentRoutes(), a.ReturnRoutes()
	return platform.Parts{
		Register: func(r grpc.ServiceRegistrar) { catalogv1.RegisterCatalogServiceServer(r, api) },
		Services: []string{ServiceName},
		Projections: []platform.Projection{{
			Name: "products by vendor", Source: Name, Position: index.Progress(), Checkpoint: index,
			Apply: func(e eventstore.RecordedEvent) {
				if err := index.Apply(e); err != nil {
					log.Error("products by vendor: cannot apply event", "event_id", e.ID, "type", e.Type, "err", err)
				}
			},
		}},
		Reactions: []platform.Reaction{
			{
				Name: ConsumerName, Source: "order", EventTypes: saga.EventTypes(), Handle: saga.Handle,
				// One order's events go one by one; orders for a hot product
				// overlap (the platform's lanes) and are group-committed
				// there.
			},
			{Name: "catalog-on-fulfilment", Source: "fulfilment", EventTypes: shipments.EventTypes(), Handle: shipments.Handle, Concurrency: 8},
			{Name: "catalog-on-trust", Source: "trust", EventTypes: returns.EventTypes(), Handle: returns.Handle, Concurrency: 8,
				Aggregates: app.ReturnAggregates},
		},
	}, nil
}
