package platform

import (
	"context"
	"fmt"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/projection"
)

// AppDeps opens service's own store (OpenStore) and returns what the
// service's application runs on: that store, OpenStoreOf for other
// services' events, the clock, the logger and its command handlers'
// options (the aggregate cache, the service's snapshot bucket). Apps never
// see NATS.
func (d Deps) AppDeps(ctx context.Context, service string) (projection.Deps, error) {
	store, err := d.OpenStore(ctx, service)
	if err != nil {
		return projection.Deps{}, fmt.Errorf("%s: %w", service, err)
	}
	handlers := es.Options{CacheSize: d.AggregateCache, SnapshotEvery: d.SnapshotEvery, Logger: d.Logger}
	if d.Personal != nil {
		handlers.Personal = d.Personal
	}
	if d.SnapshotEvery >= 0 && !d.ReadOnly && d.NATS != nil {
		handlers.Snapshots = d.snapshots(service)
	}
	return projection.Deps{Store: store, Open: d.OpenStoreOf, Clock: d.Clock, Logger: d.Logger, Handlers: handlers}, nil
}
