// Package platform assembles a Custody process, in the style of Loki and
// Mimir: every service is a Module, and `custody run --target=…` picks which
// modules run in this process. Monolithic on a laptop (every module, one
// gRPC port, an embedded NATS with JetStream), one module per pod in a
// cluster (against an external NATS) — the same code either way.
//
// A module declares, the platform runs: a module's New opens its event
// store and returns its Parts — gRPC services, projections (read models fed
// by a service's events), reactions (handlers of another service's events)
// and workers (deadline schedulers). One runtime (runtime.go) follows the
// projections, subscribes the reactions with one retry and parking policy,
// starts and stops them all, and tells when everything has settled.
// `custody rebuild` folds the same projections from scratch. A service's
// app/ package therefore holds commands, queries and event handlers and
// never imports NATS. docs/design.md describes the whole.
package platform

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
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
	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/personal"
	"github.com/custody/custody/pkg/projection"
)

// Module is one service that can run in a Custody process.
type Module struct {
	// Name is the target name: "catalog", "order", …
	Name string
	// RegisterFlags declares the module's settings on fs (Loki's
	// RegisterFlags shape); nil when it has none. New reads what the flags
	// set. The binary also accepts each flag from the environment (see
	// EnvName).
	RegisterFlags func(fs *flag.FlagSet)
	// New builds the module on d without starting anything: it opens its
	// own store and returns its parts. The runtime starts them; `custody
	// rebuild` uses only the projections, on a read-only d.
	New func(ctx context.Context, d Deps) (Parts, error)
}

// Parts are what a module consists of.
type Parts struct {
	// Register adds the module's gRPC services to the process's server.
	Register func(grpc.ServiceRegistrar)
	// Services are the gRPC service names it registers (health reports
	// them SERVING once every module has started).
	Services []string
	// Projections are the read models it keeps. Those fed by the module's
	// own store have caught up before the process serves; others follow in
	// the background as soon as their source's stream exists.
	Projections []Projection
	// Reactions are its handlers of events, its own or another service's.
	Reactions []Reaction
	// Workers run until their context ends (deadline schedulers). They
	// start once the module's own projections have caught up.
	Workers []func(ctx context.Context)
	// Stop, if set, is called after the runtime has stopped the module's
	// projections, reactions and workers (to end open watches, say).
	Stop func(ctx context.Context) error
	// Web, if set, is a web interface the module serves over HTTP on an
	// address of its own (the support console).
	Web *Web
}

// Web is a module's HTTP interface. Run listens on Addr once every module
// has started and the gRPC server listens, names the address in its
// "serving" log line (Process.Web), and serves the handler until the
// process stops; a rebuild ignores it.
type Web struct {
	// Name keys the address in the log line and Process.Web: "console".
	Name string
	// Addr is the listen address; "" serves nothing.
	Addr string
	// Handler builds the handler once the process's own gRPC address is
	// known (a module that is a client of the process's services dials
	// it); an error stops the process from starting.
	Handler func(grpcAddr string) (http.Handler, error)
}

// Projection is a read model and the service whose events feed it.
type Projection struct {
	Name   string // "orders by buyer and vendor"
	Source string // service whose store it folds: "order"
	// Apply folds one event into the read model.
	Apply func(eventstore.RecordedEvent)
	// Position, if set, is the read model's progress: the runtime advances
	// it past every event it applies and marks it ready once the read model
	// has caught up with its source as it was when following began.
	Position *projection.Position
	// Skipped, if set, is told the position of an event that cannot be
	// read, and following goes on behind it (the audit index records such
	// gaps). Without it, the event is logged and skipped.
	Skipped func(pos uint64)
	// Checkpoint, if set, saves and restores the read model, so that a
	// restart resumes from its last checkpoint instead of position 1
	// (checkpoint.go). Apply must be its only writer.
	Checkpoint Checkpointer
	// Stored, if set, is a read model that keeps its state in the
	// process's read-model store (pkg/kv) rather than the heap (stored.go).
	Stored Stored
}

// Reaction is a handler of one service's events: a durable consumer of the
// source's event stream that hands it the events of the listed types.
type Reaction struct {
	// Name is the durable consumer's name, "<service>-on-<source>".
	Name string
	// Source is the service whose events it handles.
	Source string
	// EventTypes lists the event types it wants (full proto names).
	EventTypes []string
	// Aggregates, if set, narrows the source's stream to these aggregate
	// types' events ("claim") on the server: the reaction is not delivered
	// what it would drop.
	Aggregates []string
	// Handle handles one event; it must be idempotent. An error is retried
	// with backoff; one marked with fault.Permanent, or one that still
	// fails after the runtime's last delivery, parks the event.
	Handle func(ctx context.Context, e eventstore.RecordedEvent) error
	// Concurrency is how many events of different aggregates are handled
	// at once; default 32. Events of one aggregate always go one by one.
	Concurrency int
	// OrderBy, if set, keys what goes one by one instead of the source
	// aggregate (bus.Config.OrderBy).
	OrderBy func(eventstore.RecordedEvent) string
}

// Store is an event store that can tell its newest position, as every
// backend here can: projections wait until they have caught up with it.
// It is projection.Store, so that a module hands its app (which must not
// import the platform) d.OpenStoreOf as it is.
type Store = projection.Store

// Deps is what the process gives every module.
type Deps struct {
	Logger    *slog.Logger
	NATS      *nats.Conn
	JetStream jetstream.JetStream
	Clock     clock.Clock
	// Replicas for the streams a module creates (1 embedded, 3 in a cluster).
	Replicas int
	// Backend selects the event store; the zero value is JetStream.
	Backend Backend
	// ReadOnly opens every store read-only (custody rebuild).
	ReadOnly bool
	// AggregateCache and SnapshotEvery tune the modules' command handlers
	// (see Config).
	AggregateCache int
	SnapshotEvery  int
	// feeds share a subscription per source among the process's read
	// models (Run makes them).
	feeds *feeds
	// checkpoints stores the read models' checkpoints; nil: none are
	// read or written (Run makes it unless --checkpoint-every=0).
	checkpoints *checkpoints
	// damaged notes the modules whose store opened damaged (Run makes it).
	damaged *damaged
	// writeGate, if set, refuses writes (the embedded server's disk guard).
	writeGate esjs.Gate
	// readModels is the process's read-model store (Run opens it); the
	// runtime gives each Stored read model its space there.
	readModels *kv.DB
	// Personal seals the personal fields of every event the modules'
	// command handlers append, and reveals them in the gRPC answers; its
	// Keys hold the data subjects' keys (Run opens them on the process's
	// JetStream). Nil in tools that neither write nor show events.
	Personal *personal.Codec
}

// OpenStore opens the event store of service, the module's own, creating
// its stream if need be (read-only, and waiting for it, when d.ReadOnly).
func (d Deps) OpenStore(ctx context.Context, service string) (Store, error) {
	if d.ReadOnly {
		return d.OpenStoreOf(ctx, service)
	}
	return d.Backend.open(ctx, d, service, false)
}

// ErrNotCreatedYet: the service whose events were asked for has not
// created its stream yet (it has never run).
var ErrNotCreatedYet = esjs.ErrNotCreatedYet

// OpenStoreIfCreated opens another service's events read-only, or fails at
// once with ErrNotCreatedYet: for a query, which must not wait for a
// service that may never run.
func (d Deps) OpenStoreIfCreated(ctx context.Context, service string) (Store, error) {
	return d.Backend.open(ctx, d, service, true)
}

// OpenStoreOf opens another service's events read-only, for projections
// and reactions. In microservice mode the owner may start later: it waits,
// bounded by ctx, until the owner has created its stream.
func (d Deps) OpenStoreOf(ctx context.Context, service string) (Store, error) {
	logged := false
	for {
		st, err := d.OpenStoreIfCreated(ctx, service)
		if !errors.Is(err, ErrNotCreatedYet) {
			return st, err
		}
		if !logged {
			d.Logger.Info("waiting for another service's event stream", "service", service)
			logged = true
		}
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
