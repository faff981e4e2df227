// Package catalog is the catalog service of Custody: vendors, products with
// SKUs and their stock ledger, creators' affiliate links and live sessions,
// and the saga that reserves an order's stock (all lines or none) when the
// order service publishes OrderPlaced and releases it on OrderCancelled or
// OrderRejected.
//
// Module plugs it into a Custody process (pkg/platform):
//
//	platform.Run(ctx, cfg, []platform.Module{catalog.Module(), order.Module()})
//
// Layout: domain/ (pure aggregates), app/ (command handlers, the saga, the
// ListProducts read model), grpcapi/ (validation, access table, error
// mapping) and this file (wiring).
package catalog

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"

	"github.com/custody/custody/pkg/bus"
	"github.com/custody/custody/pkg/platform"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	"github.com/custody/custody/services/catalog/app"
	"github.com/custody/custody/services/catalog/grpcapi"
)

// Names the module uses on the bus and in the process.
const (
	// Name is the module (target) name and the event store's service name.
	Name = "catalog"
	// ConsumerName is the durable consumer of order events.
	ConsumerName = "catalog-on-order"
	// ServiceName is the gRPC service this module registers.
	ServiceName = grpcapi.ServiceName
)

// startTimeout bounds how long Start waits for the read model to catch up.
const startTimeout = 2 * time.Minute

// Module is the catalog service as a platform module.
//
// Start opens the catalog's event store (stream CUSTODY_CATALOG), rebuilds
// the products-by-vendor read model and returns once it has caught up with
// the store (so the process reports ready only then). The consumer of order
// events ("catalog-on-order" on CUSTODY_ORDER) starts in the background: in
// microservice mode the order service may never have run yet, so there is no
// order stream to consume; the module retries until there is, logging while
// it waits, and the saga then catches up from the first order event.
func Module() platform.Module {
	return platform.Module{Name: Name, Projections: projections, Start: start}
}

func start(ctx context.Context, d platform.Deps) (platform.Running, error) {
	log := d.Logger
	store, err := d.OpenStore(ctx, Name)
	if err != nil {
		return platform.Running{}, err
	}
	a := app.New(store, d.Clock, log)
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	err = a.Start(sctx)
	cancel()
	if err != nil {
		return platform.Running{}, err
	}

	saga := app.NewSaga(a)
	cons := &consumer{log: log}
	bctx, stopBus := context.WithCancel(context.WithoutCancel(ctx))
	cons.wg.Add(1)
	go func() {
		defer cons.wg.Done()
		cons.run(bctx, d.JetStream, bus.Config{
			Name:          ConsumerName,
			SourceService: "order",
			EventTypes:    app.SagaEventTypes,
			Replicas:      d.Replicas,
			Backoff:       []time.Duration{200 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second},
			MaxDeliver:    20, // ~1.5 min of retries before parking: outlasts a store hiccup
			// One lane per order keeps each order's events in order; orders
			// for a hot product overlap and are group-committed there.
			Concurrency: 16,
			Logger:      log,
		}, saga.Handle)
	}()

	// Shipments sell reserved units; resellable returns restock them.
	stock := []*consumer{{log: log}, {log: log}}
	for i, src := range []struct {
		name, service string
		types         []string
	}{
		{"catalog-on-fulfilment", "fulfilment", app.ShipmentEventTypes},
		{"catalog-on-trust", "trust", app.ReturnEventTypes},
	} {
		c := stock[i]
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.run(bctx, d.JetStream, bus.Config{
				Name: src.name, SourceService: src.service, EventTypes: src.types, Replicas: d.Replicas,
				Backoff:    []time.Duration{200 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second},
				MaxDeliver: 20, Concurrency: 8, Logger: log,
			}, a.HandleStockEvent)
		}()
	}

	api := grpcapi.New(a, log)
	return platform.Running{
		Register: func(r grpc.ServiceRegistrar) { catalogv1.RegisterCatalogServiceServer(r, api) },
		Services: []string{ServiceName},
		Stop: func(context.Context) error {
			stopBus()
			cons.stop()
			for _, c := range stock {
				c.stop()
			}
			a.Stop()
			return nil
		},
	}, nil
}

// consumer subscribes to order events as soon as the order stream exists.
type consumer struct {
	log *slog.Logger
	wg  sync.WaitGroup
	mu  sync.Mutex
	c   *bus.Consumer
}

func (c *consumer) run(ctx context.Context, js jetstream.JetStream, cfg bus.Config, h bus.Handler) {
	wait := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		cons, err := bus.Subscribe(ctx, js, cfg, h)
		if err == nil {
			c.mu.Lock()
			c.c = cons
			c.mu.Unlock()
			c.log.Info("reacting to order events", "consumer", cfg.Name)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			if attempt%20 == 0 { // not every try: a lone catalog may wait long
				c.log.Info("order event stream not there yet (order service never started?); will subscribe when it is", "consumer", cfg.Name)
			}
		} else {
			c.log.Warn("cannot subscribe to order events; retrying", "consumer", cfg.Name, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// stop waits for the subscribing goroutine (whose context the caller
// cancelled) and stops the consumer if it was made.
func (c *consumer) stop() {
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c != nil {
		c.c.Stop()
	}
}
