package projection

import (
	"context"
	"log/slog"

	"github.com/custody/custody/pkg/clock"
)

// Deps is what a service's application (its commands, queries, read
// models and event handlers) runs on, as the platform's Deps.AppDeps gives
// it. Every field is required but Open.
type Deps struct {
	// Store holds the service's own events.
	Store Store
	// Open opens another service's events read-only, waiting (bounded by
	// ctx) until that service has created its stream: the platform's
	// Deps.OpenStoreOf. Hand it to NewUpstream; nil for a service that
	// reads no other's events.
	Open   func(ctx context.Context, service string) (Store, error)
	Clock  clock.Clock
	Logger *slog.Logger
}
