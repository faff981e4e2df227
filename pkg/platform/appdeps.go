package platform

import (
	"context"
	"fmt"

	"github.com/custody/custody/pkg/projection"
)

// AppDeps opens service's own store (OpenStore) and returns what the
// service's application runs on: that store, OpenStoreOf for other
// services' events, the clock and the logger. Apps never see NATS.
func (d Deps) AppDeps(ctx context.Context, service string) (projection.Deps, error) {
	store, err := d.OpenStore(ctx, service)
	if err != nil {
		return projection.Deps{}, fmt.Errorf("%s: %w", service, err)
	}
	return projection.Deps{Store: store, Open: d.OpenStoreOf, Clock: d.Clock, Logger: d.Logger}, nil
}
