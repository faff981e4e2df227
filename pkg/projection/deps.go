package projection

import (
	"context"
	"log/slog"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/es"
)

// Deps is what a service's application (its commands, queries, read
// models and event handlers) runs on, as the platform's Deps.AppDeps gives
// it. Every field is required but Open and Handlers.
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
	// Handlers are the options of the service's command handlers (the
	// process's aggregate cache size, the service's snapshot store): pass
	// them to every es.NewHandler. The zero value takes es's defaults,
	// without snapshots.
	Handlers es.Options
}
