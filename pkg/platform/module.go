// Package platform assembles a Custody process, in the style of Loki and
// Mimir: every service is a Module, and `custody run --target=…` picks which
// modules run in this process. Monolithic on a laptop (every module, one
// gRPC port, an embedded NATS with JetStream), one module per pod in a
// cluster (against an external NATS) — the same code either way.
package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/eventstore"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
)

// Module is one service that can run in a Custody process.
type Module struct {
	// Name is the target name: "catalog", "order", …
	Name string
	// Start opens the module's store, starts its consumers and returns once
	// it can serve. It must not block.
	Start func(ctx context.Context, d Deps) (Running, error)
	// Projections returns the module's read models, new and empty, for
	// `custody rebuild`; nil when it keeps none. They are the same types
	// the module builds at Start, fed from the same stores.
	Projections func() []Projection
}

// Projection is a read model and the service whose events feed it.
type Projection struct {
	Name   string // "orders by buyer and vendor"
	Source string // service whose store it folds: "order"
	Apply  func(eventstore.RecordedEvent)
}

// Running is a started module.
type Running struct {
	// Register adds the module's gRPC services to the process's server.
	Register func(grpc.ServiceRegistrar)
	// Services are the gRPC service names it registered (health reports
	// them SERVING once every module has started).
	Services []string
	// Stop stops consumers and background work. May be nil.
	Stop func(context.Context) error
}

// Deps is what the process gives every module.
type Deps struct {
	Logger    *slog.Logger
	NATS      *nats.Conn
	JetStream jetstream.JetStream
	Clock     clock.Clock
	// Replicas for the streams a module creates (1 embedded, 3 in a cluster).
	Replicas int
}

// OpenStore opens the event store of service on the process's NATS.
func (d Deps) OpenStore(ctx context.Context, service string) (*esjs.Store, error) {
	return esjs.Open(ctx, d.NATS, esjs.Config{Service: service, Replicas: d.Replicas, Now: d.Clock.Now})
}

// OpenStoreOf opens another service's events read-only, for projections
// and reactions. In microservice mode the owner may start later: it waits,
// bounded by ctx, until the owner has created its stream.
func (d Deps) OpenStoreOf(ctx context.Context, service string) (*esjs.Store, error) {
	for {
		st, err := esjs.Open(ctx, d.NATS, esjs.Config{Service: service, ReadOnly: true, Now: d.Clock.Now})
		if !errors.Is(err, esjs.ErrNotCreatedYet) {
			return st, err
		}
		d.Logger.Info("waiting for another service's event stream", "service", service)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s events: %w", service, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// Select returns the modules named by targets ("all" or a comma-separated
// list), in the order given by modules.
func Select(modules []Module, targets string) ([]Module, error) {
	var names []string
	for _, m := range modules {
		names = append(names, m.Name)
	}
	if targets == "" || targets == "all" {
		return modules, nil
	}
	want := map[string]bool{}
	for _, t := range strings.Split(targets, ",") {
		t = strings.TrimSpace(t)
		if t == "all" {
			return modules, nil
		}
		if !slices.Contains(names, t) {
			sort.Strings(names)
			return nil, fmt.Errorf("unknown target %q (known: all, %s)", t, strings.Join(names, ", "))
		}
		want[t] = true
	}
	var out []Module
	for _, m := range modules {
		if want[m.Name] {
			out = append(out, m)
		}
	}
	return out, nil
}
